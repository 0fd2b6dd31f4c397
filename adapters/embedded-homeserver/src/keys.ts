import { isDeepStrictEqual } from "node:util"
import type { JsonObject } from "./decode.ts"
import { asObject, isObject, optObject } from "./decode.ts"
import { badJson, invalidParam, notFound } from "./errors.ts"
import { serverNameOf } from "./ids.ts"
import type { CrossSigningUsage, JournalRecord, ToDeviceMessage } from "./records.ts"
import type { Route } from "./routing.ts"
import { authed, CLIENT, json } from "./routing.ts"
import type { Store } from "./store.ts"
import { keyIdsOf, withSignatures } from "./store.ts"
import { parseStreamToken } from "./stream-token.ts"
import { deviceListChanges, oneTimeKeyCounts } from "./sync.ts"
import { requirePassword } from "./account.ts"

/**
 * End-to-end encryption plumbing as matrix-sdk-crypto drives it: device and one-time keys,
 * claims (one-time key first, fallback key after), cross-signing keys and signatures, device
 * list changes, and to-device messages. The server never looks inside keys beyond their ids:
 * verifying signatures is the clients' job, storing and relaying faithfully is ours.
 */

const CROSS_SIGNING: ReadonlyArray<[string, CrossSigningUsage]> = [
  ["master_key", "master"],
  ["self_signing_key", "self_signing"],
  ["user_signing_key", "user_signing"]
]

const uploadKeys = (store: Store, userId: string, deviceId: string, body: JsonObject): Array<JournalRecord> => {
  const device = store.users.get(userId)?.devices.get(deviceId)
  if (device === undefined) throw notFound("Unknown device.")
  const records: Array<JournalRecord> = []
  const deviceKeys = optObject(body, "device_keys")
  if (deviceKeys !== undefined) {
    if (deviceKeys.user_id !== userId || deviceKeys.device_id !== deviceId)
      throw invalidParam("user_id and device_id in device_keys must match the access token's.")
    if (!isDeepStrictEqual(deviceKeys, device.keys)) records.push({ t: "keys.device", pos: store.nextPos(), userId, deviceId, keys: deviceKeys })
  }
  const otks = optObject(body, "one_time_keys")
  if (otks !== undefined) {
    const fresh: JsonObject = {}
    for (const [keyId, key] of Object.entries(otks)) {
      if (!keyId.includes(":")) throw invalidParam(`One-time key id '${keyId}' is not algorithm:id.`)
      const existing = device.oneTimeKeys.get(keyId)
      if (existing === undefined) fresh[keyId] = key
      else if (!isDeepStrictEqual(existing, key)) throw invalidParam(`One time key ${keyId} already exists with a different value.`)
    }
    if (Object.keys(fresh).length > 0) records.push({ t: "keys.otk", userId, deviceId, keys: fresh })
  }
  const fallback = optObject(body, "fallback_keys") ?? optObject(body, "org.matrix.msc2732.fallback_keys")
  if (fallback !== undefined) {
    const fresh: JsonObject = {}
    for (const [keyId, key] of Object.entries(fallback)) {
      if (!keyId.includes(":")) throw invalidParam(`Fallback key id '${keyId}' is not algorithm:id.`)
      const current = device.fallbackKeys.get(keyId.slice(0, keyId.indexOf(":")))
      if (current === undefined || current.keyId !== keyId || !isDeepStrictEqual(current.key, key)) fresh[keyId] = key
    }
    if (Object.keys(fresh).length > 0) records.push({ t: "keys.fallback", userId, deviceId, keys: fresh })
  }
  return records
}

const queryKeys = (store: Store, requester: string, body: JsonObject): JsonObject => {
  const wanted = optObject(body, "device_keys") ?? {}
  const deviceKeys: Record<string, JsonObject> = {}
  const masterKeys: JsonObject = {}
  const selfSigningKeys: JsonObject = {}
  const userSigningKeys: JsonObject = {}
  for (const [userId, ids] of Object.entries(wanted)) {
    if (!Array.isArray(ids) || !ids.every((x) => typeof x === "string")) throw badJson("device_keys values must be arrays of device ids.")
    const user = store.users.get(userId)
    const devices: JsonObject = {}
    deviceKeys[userId] = devices
    if (user === undefined) continue
    for (const device of user.devices.values()) {
      if (device.keys === undefined || (ids.length > 0 && !ids.includes(device.deviceId))) continue
      devices[device.deviceId] = { ...withSignatures(store, userId, device.deviceId, device.keys, requester), unsigned: device.displayName === undefined ? {} : { device_display_name: device.displayName } }
    }
    const signed = (usage: CrossSigningUsage) => {
      const key = user.crossSigning.get(usage)
      return key === undefined ? undefined : withSignatures(store, userId, keyIdsOf(key)[0] ?? "", key, requester)
    }
    const master = signed("master")
    const selfSigning = signed("self_signing")
    const userSigning = signed("user_signing")
    if (master !== undefined) masterKeys[userId] = master
    if (selfSigning !== undefined) selfSigningKeys[userId] = selfSigning
    if (userSigning !== undefined && userId === requester) userSigningKeys[userId] = userSigning
  }
  return { device_keys: deviceKeys, master_keys: masterKeys, self_signing_keys: selfSigningKeys, user_signing_keys: userSigningKeys, failures: {} }
}

const claimKeys = (store: Store, body: JsonObject): { records: Array<JournalRecord>; claimed: JsonObject } => {
  const wanted = optObject(body, "one_time_keys") ?? {}
  const records: Array<JournalRecord> = []
  const claimed: Record<string, Record<string, JsonObject>> = {}
  for (const [userId, devices] of Object.entries(wanted)) {
    if (!isObject(devices)) throw badJson("one_time_keys values must be objects.")
    for (const [deviceId, algorithm] of Object.entries(devices)) {
      if (typeof algorithm !== "string") throw badJson("Algorithms must be strings.")
      const device = store.users.get(userId)?.devices.get(deviceId)
      if (device === undefined) continue
      const prefix = `${algorithm}:`
      const otk = [...device.oneTimeKeys].find(([id]) => id.startsWith(prefix))
      const out = ((claimed[userId] ??= {})[deviceId] = {} as JsonObject)
      if (otk !== undefined) {
        out[otk[0]] = otk[1]
        records.push({ t: "keys.otk.claimed", userId, deviceId, keyId: otk[0] })
        continue
      }
      const fb = device.fallbackKeys.get(algorithm)
      if (fb === undefined) {
        delete claimed[userId][deviceId]
        continue
      }
      out[fb.keyId] = fb.key
      if (!fb.used) records.push({ t: "keys.fallback.used", userId, deviceId, keyId: fb.keyId })
    }
  }
  return { records, claimed }
}

const crossSigningKey = (value: unknown, userId: string, usage: CrossSigningUsage): JsonObject => {
  const key = asObject(value, usage)
  if (key.user_id !== userId) throw invalidParam(`The ${usage} key's user_id must be ${userId}.`)
  if (!Array.isArray(key.usage) || !key.usage.includes(usage)) throw invalidParam(`The ${usage} key must list usage '${usage}'.`)
  if (!isObject(key.keys) || Object.keys(key.keys).length !== 1) throw invalidParam(`The ${usage} key must hold exactly one key.`)
  return key
}

export const routes: ReadonlyArray<Route> = [
  authed("POST", `${CLIENT}/keys/upload`, async ({ env, auth, body }) => {
    const records = uploadKeys(env.store, auth.userId, auth.deviceId, asObject(body))
    if (records.length > 0) await env.store.commit(records)
    return json({ one_time_key_counts: oneTimeKeyCounts(env.store.users.get(auth.userId), auth.deviceId) })
  }),
  authed("POST", `${CLIENT}/keys/query`, ({ env, auth, body }) => json(queryKeys(env.store, auth.userId, asObject(body)))),
  authed("POST", `${CLIENT}/keys/claim`, async ({ env, body }) => {
    const { records, claimed } = claimKeys(env.store, asObject(body))
    if (records.length > 0) await env.store.commit(records)
    return json({ one_time_keys: claimed, failures: {} })
  }),
  authed("GET", `${CLIENT}/keys/changes`, ({ env, auth, query }) => {
    const from = parseStreamToken(query.get("from") ?? "", "from")
    const toRaw = query.get("to")
    const to = toRaw === null || toRaw === "" ? env.store.durablePos : parseStreamToken(toRaw, "to")
    return json(deviceListChanges(env.store, auth.userId, from, to))
  }),
  authed("POST", `${CLIENT}/keys/device_signing/upload`, async ({ env, auth, body }) => {
    const o = asObject(body)
    const user = env.store.users.get(auth.userId)!
    const changed: Array<[CrossSigningUsage, JsonObject]> = []
    for (const [field, usage] of CROSS_SIGNING) {
      if (o[field] === undefined) continue
      const key = crossSigningKey(o[field], auth.userId, usage)
      if (!isDeepStrictEqual(key, user.crossSigning.get(usage))) changed.push([usage, key])
    }
    // Spec v1.11 (MSC3967): replacing an identity takes UIA with the account's password; the first
    // upload, or one that changes nothing, does not. An `auth` sent anyway is checked all the same.
    const given = optObject(o, "auth")
    if ((user.crossSigning.has("master") && changed.length > 0) || given !== undefined) await requirePassword(env, auth.userId, given)
    const records: Array<JournalRecord> = changed.map(([usage, key]) => ({ t: "keys.cross_signing", pos: env.store.nextPos(), userId: auth.userId, usage, key }))
    if (records.length > 0) await env.store.commit(records)
    return json({})
  }),
  authed("POST", `${CLIENT}/keys/signatures/upload`, async ({ env, auth, body }) => {
    const records: Array<JournalRecord> = []
    const failures: Record<string, JsonObject> = {}
    for (const [userId, objects] of Object.entries(asObject(body))) {
      if (!isObject(objects)) throw badJson("Signature upload values must be objects.")
      for (const [keyId, signed] of Object.entries(objects)) {
        const user = env.store.users.get(userId)
        const known =
          user !== undefined && (user.devices.get(keyId)?.keys !== undefined || [...user.crossSigning.values()].some((k) => keyIdsOf(k).includes(keyId)))
        const signatures = isObject(signed) && isObject(signed.signatures) ? signed.signatures[auth.userId] : undefined
        if (!known || !isObject(signatures)) {
          ;(failures[userId] ??= {})[keyId] = { errcode: known ? "M_INVALID_SIGNATURE" : "M_NOT_FOUND", error: known ? "No signature by you." : "Unknown key." }
          continue
        }
        records.push({ t: "keys.signature", pos: env.store.nextPos(), userId, keyId, signer: auth.userId, signatures })
      }
    }
    if (records.length > 0) await env.store.commit(records)
    return json({ failures })
  }),
  authed("PUT", `${CLIENT}/sendToDevice/:eventType/:txnId`, async ({ env, auth, params, body }) => {
    const { store } = env
    const txn = { tokenKey: auth.tokenKey, scope: `sendToDevice/${params.eventType}`, txnId: params.txnId }
    if (store.txns.has(store.txnKey(txn))) return json({})
    const messages = optObject(asObject(body), "messages") ?? {}
    const out: Array<ToDeviceMessage> = []
    for (const [userId, devices] of Object.entries(messages)) {
      if (!isObject(devices)) throw badJson("messages values must be objects.")
      // Other servers' users are unreachable without federation: dropped, as a server does
      // when a destination is down.
      if (serverNameOf(userId) !== env.serverName) continue
      const user = store.users.get(userId)
      for (const [deviceId, content] of Object.entries(devices)) {
        if (!isObject(content)) throw badJson("To-device message contents must be objects.")
        const targets = deviceId === "*" ? [...(user?.devices.keys() ?? [])] : user?.devices.has(deviceId) ? [deviceId] : []
        for (const target of targets) out.push({ userId, deviceId: target, content })
      }
    }
    await store.commit([{ t: "to_device", pos: store.nextPos(), sender: auth.userId, type: params.eventType, txn, messages: out }])
    return json({})
  })
]

