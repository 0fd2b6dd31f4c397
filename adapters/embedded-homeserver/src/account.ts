import type { JsonObject } from "./decode.ts"
import { asObject, optBoolean, optObject, optString, reqString } from "./decode.ts"
import { authChallenge, badJson, forbidden, invalidParam, invalidUsername, MatrixError, missingParam, notFound, unknownToken, userInUse } from "./errors.ts"
import { isValidLocalpart, newAccessToken, newDeviceId, randomString, tokenKey } from "./ids.ts"
import { hashPassword, verifyPassword } from "./passwords.ts"
import type { JournalRecord } from "./records.ts"
import { requireRegistrationAuth } from "./registration.ts"
import type { Env, Route } from "./routing.ts"
import { authed, CLIENT, json, open } from "./routing.ts"
import type { Store } from "./store.ts"

/**
 * Accounts and sessions: registration (with the user-interactive auth dance matrix-js-sdk and
 * others expect; who may register is `registration.ts`'s policy), password login, logout,
 * devices, and OpenID tokens for widgets. An access token names one device; logging out deletes
 * the device, as Synapse does, so its keys and to-device inbox go with it.
 */
export interface Credentials {
  readonly userId: string
  readonly accessToken: string
  readonly deviceId: string
}

const MAX_PASSWORD = 512

const userIdFor = (env: Env, userOrLocalpart: string): string =>
  userOrLocalpart.startsWith("@") ? userOrLocalpart.toLowerCase() : `@${userOrLocalpart.toLowerCase()}:${env.serverName}`

/** Records for a new session: a device (new or reused) and its access token. */
const sessionRecords = (
  store: Store,
  userId: string,
  deviceId: string | undefined,
  displayName: string | undefined
): { records: Array<JournalRecord>; credentials: Credentials } => {
  const id = deviceId ?? newDeviceId()
  const accessToken = newAccessToken()
  const exists = store.users.get(userId)?.devices.has(id) === true
  const records: Array<JournalRecord> = []
  if (!exists || displayName !== undefined)
    records.push({ t: "device", pos: store.nextPos(), userId, deviceId: id, ts: store.now(), ...(displayName !== undefined && { displayName }) })
  records.push({ t: "token", tokenKey: tokenKey(accessToken), userId, deviceId: id })
  return { records, credentials: { userId, accessToken, deviceId: id } }
}

const checkPassword = (password: string): void => {
  if (password.length > MAX_PASSWORD) throw invalidParam(`Password longer than ${MAX_PASSWORD} characters.`)
}

/**
 * Creates a user (and, unless `inhibitLogin`, a first session). Hashing is the only `await`; the
 * name is checked again after it, so two racing registrations cannot both win.
 */
const createUser = async (
  env: Env,
  localpart: string,
  password: string,
  opts: { readonly deviceId?: string; readonly displayName?: string; readonly inhibitLogin?: boolean }
): Promise<{ userId: string; credentials?: Credentials }> => {
  const passwordHash = await hashPassword(password)
  const userId = `@${localpart}:${env.serverName}`
  if (env.store.users.has(userId)) throw userInUse("User ID already taken.")
  const records: Array<JournalRecord> = [
    { t: "user", userId, passwordHash, ts: env.now() },
    // Synapse's default display name is the localpart; clients render members by it.
    { t: "profile", userId, displayname: localpart }
  ]
  if (opts.inhibitLogin === true) {
    await env.store.commit(records)
    return { userId }
  }
  const session = sessionRecords(env.store, userId, opts.deviceId, opts.displayName)
  await env.store.commit([...records, ...session.records])
  return { userId, credentials: session.credentials }
}

const checkLocalpart = (env: Env, localpart: string): void => {
  if (!isValidLocalpart(localpart)) throw invalidUsername("User ID can only contain characters a-z, 0-9, or '=_-./+'")
  if (`@${localpart}:${env.serverName}`.length > 255) throw invalidUsername("User ID is too long.")
  if (env.store.users.has(`@${localpart}:${env.serverName}`)) throw userInUse("User ID already taken.")
}

/**
 * Registers `localpart` (no user-interactive auth: the caller is the server's owner) with a first
 * session; refuses a taken or invalid name as `/register` does (`M_USER_IN_USE`, `M_INVALID_USERNAME`).
 *
 * @example const { userId, accessToken } = await registerUser(env, "bob", "secret")
 */
export const registerUser = async (env: Env, localpart: string, password: string): Promise<Credentials> => {
  checkLocalpart(env, localpart)
  checkPassword(password)
  const { credentials } = await createUser(env, localpart, password, {})
  return credentials!
}

/**
 * Registers `localpart` or, when it exists, logs in with `password`; either way a new device.
 *
 * @example const { accessToken } = await ensureUser(env, "alice", "secret")
 */
export const ensureUser = async (env: Env, localpart: string, password: string): Promise<Credentials> => {
  const userId = `@${localpart}:${env.serverName}`
  const user = env.store.users.get(userId)
  if (user === undefined) {
    checkLocalpart(env, localpart)
    checkPassword(password)
    try {
      const { credentials } = await createUser(env, localpart, password, {})
      return credentials!
    } catch (e) {
      // Lost a race with a concurrent ensureUser for the same name: log in instead.
      if (!(e instanceof MatrixError && e.errcode === "M_USER_IN_USE")) throw e
      return ensureUser(env, localpart, password)
    }
  }
  if (!(await verifyPassword(password, user.passwordHash))) throw forbidden("Invalid username or password")
  const session = sessionRecords(env.store, userId, undefined, undefined)
  await env.store.commit(session.records)
  return session.credentials
}

/**
 * UIA for sensitive operations on an existing account: the account's password. Without `auth`
 * the 401 is bare (flows, params, session); a wrong password or another stage adds the errcode.
 *
 * @example await requirePassword(env, "@a:hs", { type: "m.login.password", password: "pw", session: "s" })
 */
export const requirePassword = async (env: Env, userId: string, auth: JsonObject | undefined): Promise<void> => {
  const stages = ["m.login.password"]
  if (auth === undefined) throw authChallenge(stages, randomString(18))
  const session = typeof auth.session === "string" && auth.session !== "" ? auth.session : randomString(18)
  if (auth.type !== "m.login.password") throw authChallenge(stages, session, { errcode: "M_UNRECOGNIZED", error: "Unsupported auth type" })
  const password = typeof auth.password === "string" ? auth.password : ""
  const user = env.store.users.get(userId)!
  if (!(await verifyPassword(password, user.passwordHash))) throw authChallenge(stages, session, { errcode: "M_FORBIDDEN", error: "Invalid password" })
}

const deleteDevices = (store: Store, userId: string, deviceIds: Iterable<string>): Array<JournalRecord> =>
  [...deviceIds].map((deviceId) => ({ t: "device.deleted", pos: store.nextPos(), userId, deviceId }) as const)

const deviceInfo = (d: { deviceId: string; displayName?: string; createdTs: number }) => ({
  device_id: d.deviceId,
  ...(d.displayName !== undefined && { display_name: d.displayName }),
  last_seen_ts: d.createdTs
})

export const routes: ReadonlyArray<Route> = [
  open("GET", `${CLIENT}/login`, () => json({ flows: [{ type: "m.login.password" }] })),
  open("POST", `${CLIENT}/login`, async ({ env, body }) => {
    const o = asObject(body)
    const type = reqString(o, "type")
    if (type !== "m.login.password") throw new MatrixError({ status: 400, errcode: "M_UNKNOWN", error: `Unknown login type ${type}` })
    const identifier = optObject(o, "identifier")
    let who: string | undefined
    if (identifier !== undefined) {
      if (identifier.type !== "m.id.user") throw new MatrixError({ status: 400, errcode: "M_UNKNOWN", error: "Only m.id.user identifiers are supported." })
      who = optString(identifier, "user")
    } else who = optString(o, "user")
    if (who === undefined) throw missingParam("Missing user identifier.")
    const password = reqString(o, "password")
    const deviceId = optString(o, "device_id")
    const displayName = optString(o, "initial_device_display_name")
    const userId = userIdFor(env, who)
    const user = env.store.users.get(userId)
    // One answer for unknown user and wrong password, so logins cannot probe for accounts.
    const ok = user !== undefined && (await verifyPassword(password, user.passwordHash))
    if (!ok) throw forbidden("Invalid username or password")
    const session = sessionRecords(env.store, userId, deviceId, displayName)
    await env.store.commit(session.records)
    return json({
      user_id: userId,
      access_token: session.credentials.accessToken,
      device_id: session.credentials.deviceId,
      home_server: env.serverName,
      well_known: { "m.homeserver": { base_url: env.baseUrl() } }
    })
  }),
  open("GET", `${CLIENT}/register/available`, ({ env, query }) => {
    const username = query.get("username")
    if (username === null) throw missingParam("Missing username.")
    checkLocalpart(env, username)
    return json({ available: true })
  }),
  open("POST", `${CLIENT}/register`, async ({ env, body, query }) => {
    const kind = query.get("kind") ?? "user"
    if (kind === "guest") throw new MatrixError({ status: 403, errcode: "M_GUEST_ACCESS_FORBIDDEN", error: "Guest access is disabled" })
    if (kind !== "user") throw invalidParam(`Unknown kind '${kind}'.`)
    if (env.registration.kind === "closed") throw forbidden("Registration has been disabled")
    const o = asObject(body)
    // Checks that do not need authentication come first, as in Synapse, so a client learns
    // that a name is taken before completing auth.
    const localpart = optString(o, "username")?.toLowerCase() ?? `user_${randomString(6).toLowerCase().replace(/[^a-z0-9]/g, "x")}`
    checkLocalpart(env, localpart)
    const password = optString(o, "password")
    if (password === undefined) throw missingParam("Missing password.")
    checkPassword(password)
    requireRegistrationAuth(env.registration, o.auth)
    const deviceId = optString(o, "device_id")
    const displayName = optString(o, "initial_device_display_name")
    const inhibitLogin = optBoolean(o, "inhibit_login") === true
    const { userId, credentials } = await createUser(env, localpart, password, {
      ...(deviceId !== undefined && { deviceId }),
      ...(displayName !== undefined && { displayName }),
      inhibitLogin
    })
    return json(
      credentials === undefined
        ? { user_id: userId, home_server: env.serverName }
        : { user_id: userId, access_token: credentials.accessToken, device_id: credentials.deviceId, home_server: env.serverName }
    )
  }),
  authed("GET", `${CLIENT}/account/whoami`, ({ auth }) => json({ user_id: auth.userId, device_id: auth.deviceId, is_guest: false })),
  authed("POST", `${CLIENT}/logout`, async ({ env, auth }) => {
    await env.store.commit([{ t: "token.revoked", tokenKey: auth.tokenKey }, ...deleteDevices(env.store, auth.userId, [auth.deviceId])])
    return json({})
  }),
  authed("POST", `${CLIENT}/logout/all`, async ({ env, auth }) => {
    const devices = env.store.users.get(auth.userId)!.devices.keys()
    await env.store.commit([{ t: "token.revoked", tokenKey: auth.tokenKey }, ...deleteDevices(env.store, auth.userId, devices)])
    return json({})
  }),
  authed("GET", `${CLIENT}/devices`, ({ env, auth }) =>
    json({ devices: [...env.store.users.get(auth.userId)!.devices.values()].map(deviceInfo) })
  ),
  authed("GET", `${CLIENT}/devices/:deviceId`, ({ env, auth, params }) => {
    const device = env.store.users.get(auth.userId)!.devices.get(params.deviceId)
    if (device === undefined) throw notFound("Unknown device")
    return json(deviceInfo(device))
  }),
  authed("PUT", `${CLIENT}/devices/:deviceId`, async ({ env, auth, params, body }) => {
    const device = env.store.users.get(auth.userId)!.devices.get(params.deviceId)
    if (device === undefined) throw notFound("Unknown device")
    const displayName = optString(asObject(body), "display_name")
    if (displayName !== undefined)
      await env.store.commit([{ t: "device", pos: env.store.nextPos(), userId: auth.userId, deviceId: device.deviceId, displayName, ts: device.createdTs }])
    return json({})
  }),
  authed("DELETE", `${CLIENT}/devices/:deviceId`, async ({ env, auth, params, body }) => {
    const o = asObject(body)
    await requirePassword(env, auth.userId, optObject(o, "auth"))
    const user = env.store.users.get(auth.userId)!
    if (!user.devices.has(params.deviceId)) throw notFound("Unknown device")
    await env.store.commit(deleteDevices(env.store, auth.userId, [params.deviceId]))
    return json({})
  }),
  authed("POST", `${CLIENT}/delete_devices`, async ({ env, auth, body }) => {
    const o = asObject(body)
    const ids = o.devices
    if (!Array.isArray(ids) || !ids.every((x) => typeof x === "string")) throw badJson("'devices' must be an array of device ids.")
    await requirePassword(env, auth.userId, optObject(o, "auth"))
    const user = env.store.users.get(auth.userId)!
    await env.store.commit(deleteDevices(env.store, auth.userId, (ids).filter((id) => user.devices.has(id))))
    return json({})
  }),
  authed("POST", `${CLIENT}/user/:userId/openid/request_token`, async ({ env, auth, params }) => {
    if (params.userId !== auth.userId) throw forbidden("Cannot request OpenID tokens for other users.")
    const token = randomString(24)
    const expiresIn = 3600
    await env.store.commit([{ t: "openid", tokenKey: tokenKey(token), userId: auth.userId, expiresAt: env.now() + expiresIn * 1000 }])
    return json({ access_token: token, token_type: "Bearer", matrix_server_name: env.serverName, expires_in: expiresIn })
  }),
  // The federation endpoint a widget's backend calls to learn who an OpenID token belongs to.
  open("GET", "/_matrix/federation/v1/openid/userinfo", ({ env, query }) => {
    const token = query.get("access_token")
    if (token === null || token === "") throw new MatrixError({ status: 401, errcode: "M_MISSING_TOKEN", error: "Missing access_token" })
    const grant = env.store.openid.get(tokenKey(token))
    if (grant === undefined || grant.expiresAt <= env.now()) throw unknownToken("Access Token unknown or expired")
    return json({ sub: grant.userId })
  })
]
