import type { JsonObject } from "./decode.ts"
import { asObject, isObject, optObject, reqString } from "./decode.ts"
import { badJson, invalidParam, MatrixError, missingParam, notFound } from "./errors.ts"
import { type BackupVersion, betterKey, KeyBackups } from "./key-backup-store.ts"
import type { BackedUpKey, JournalRecord } from "./records.ts"
import type { RequestContext, Route } from "./routing.ts"
import { authed, CLIENT, json } from "./routing.ts"

/**
 * Server-side key backup, the client-server spec's `/room_keys` endpoints, as matrix-sdk-crypto
 * and matrix-js-sdk drive them: backup versions (`/room_keys/version`, one current: the newest),
 * and the room keys of a version by room and session (`/room_keys/keys[/{roomId}[/{sessionId}]]`,
 * `?version=`). The keys are encrypted to the backup's public key by the client; the server
 * stores them as given, keeping the better of two copies of a session (verified, lower first
 * message index, fewer forwards). Writing to a version that is not the current one is
 * `403 M_WRONG_ROOM_KEYS_VERSION` with `current_version`, so a client notices its backup was
 * replaced.
 */

const wrongVersion = (current: string | undefined) =>
  new MatrixError({ status: 403, errcode: "M_WRONG_ROOM_KEYS_VERSION", error: "Wrong backup version.", extra: current === undefined ? {} : { current_version: current } })

const versionInfo = (v: BackupVersion) => ({ algorithm: v.algorithm, auth_data: v.authData, count: KeyBackups.count(v), etag: String(v.etag), version: v.version })

const counts = (v: BackupVersion) => ({ count: KeyBackups.count(v), etag: String(v.etag) })

const versionParam = (query: URLSearchParams): string => {
  const version = query.get("version")
  if (version === null || version === "") throw missingParam("The version query parameter is required.")
  return version
}

/** The version named by `?version=`, which must exist (404) and, to write, be the current one (403). */
const targetVersion = (ctx: RequestContext, write: boolean): BackupVersion => {
  const backups = ctx.env.store.keyBackups
  const name = versionParam(ctx.query)
  const v = backups.get(ctx.auth.userId, name)
  if (v === undefined) throw notFound("Unknown backup version.")
  if (write && backups.current(ctx.auth.userId)?.version !== name) throw wrongVersion(backups.current(ctx.auth.userId)?.version)
  return v
}

const sessionsOf = (value: unknown, roomId: string): Array<BackedUpKey> => {
  const sessions = optObject(asObject(value, "Room"), "sessions") ?? {}
  return Object.entries(sessions).map(([sessionId, data]) => ({ roomId, sessionId, data: keyData(data) }))
}

const keyData = (value: unknown): JsonObject => {
  const data = asObject(value, "Key backup data")
  if (typeof data["first_message_index"] !== "number" || typeof data["forwarded_count"] !== "number" || typeof data["is_verified"] !== "boolean" || !isObject(data["session_data"]))
    throw badJson("Key backup data needs first_message_index, forwarded_count, is_verified and session_data.")
  return data
}

/** Stores the keys that improve on what the version holds. */
const putKeys = async (ctx: RequestContext, keys: ReadonlyArray<BackedUpKey>) => {
  const v = targetVersion(ctx, true)
  const better = keys.filter((k) => betterKey(k.data, v.rooms.get(k.roomId)?.get(k.sessionId)))
  if (better.length > 0) await ctx.env.store.commit([{ t: "backup.keys", userId: ctx.auth.userId, version: v.version, keys: better }])
  return json(counts(v))
}

const deleteKeys = async (ctx: RequestContext, roomId?: string, sessionId?: string) => {
  const v = targetVersion(ctx, true)
  const record: JournalRecord = { t: "backup.keys.deleted", userId: ctx.auth.userId, version: v.version, ...(roomId === undefined ? {} : { roomId }), ...(sessionId === undefined ? {} : { sessionId }) }
  await ctx.env.store.commit([record])
  return json(counts(v))
}

const roomJson = (sessions: ReadonlyMap<string, JsonObject> | undefined) => ({ sessions: Object.fromEntries(sessions ?? []) })

const ROOM_KEYS = `${CLIENT}/room_keys`

export const routes: ReadonlyArray<Route> = [
  authed("POST", `${ROOM_KEYS}/version`, async ({ env, auth, body }) => {
    const o = asObject(body)
    const algorithm = reqString(o, "algorithm")
    const authData = optObject(o, "auth_data")
    if (authData === undefined) throw missingParam("auth_data is required.")
    const version = env.store.keyBackups.nextVersion(auth.userId)
    await env.store.commit([{ t: "backup.version", userId: auth.userId, version, algorithm, authData }])
    return json({ version })
  }),
  authed("GET", `${ROOM_KEYS}/version`, ({ env, auth }) => {
    const v = env.store.keyBackups.current(auth.userId)
    if (v === undefined) throw notFound("No current backup version.")
    return json(versionInfo(v))
  }),
  authed("GET", `${ROOM_KEYS}/version/:version`, ({ env, auth, params }) => {
    const v = env.store.keyBackups.get(auth.userId, params.version)
    if (v === undefined) throw notFound("Unknown backup version.")
    return json(versionInfo(v))
  }),
  authed("PUT", `${ROOM_KEYS}/version/:version`, async ({ env, auth, params, body }) => {
    const o = asObject(body)
    const v = env.store.keyBackups.get(auth.userId, params.version)
    if (v === undefined) throw notFound("Unknown backup version.")
    if (o["version"] !== undefined && o["version"] !== params.version) throw invalidParam("The version in the body does not match the path.")
    const algorithm = reqString(o, "algorithm")
    if (algorithm !== v.algorithm) throw invalidParam("The algorithm of a backup version cannot change.")
    const authData = optObject(o, "auth_data")
    if (authData === undefined) throw missingParam("auth_data is required.")
    await env.store.commit([{ t: "backup.version", userId: auth.userId, version: v.version, algorithm, authData }])
    return json({})
  }),
  authed("DELETE", `${ROOM_KEYS}/version/:version`, async ({ env, auth, params }) => {
    if (env.store.keyBackups.get(auth.userId, params.version) === undefined) throw notFound("Unknown backup version.")
    await env.store.commit([{ t: "backup.version.deleted", userId: auth.userId, version: params.version }])
    return json({})
  }),

  authed("PUT", `${ROOM_KEYS}/keys`, (ctx) => {
    const rooms = optObject(asObject(ctx.body), "rooms") ?? {}
    return putKeys(ctx, Object.entries(rooms).flatMap(([roomId, room]) => sessionsOf(room, roomId)))
  }),
  authed("PUT", `${ROOM_KEYS}/keys/:roomId`, (ctx) => putKeys(ctx, sessionsOf(ctx.body, ctx.params.roomId))),
  authed("PUT", `${ROOM_KEYS}/keys/:roomId/:sessionId`, (ctx) => putKeys(ctx, [{ roomId: ctx.params.roomId, sessionId: ctx.params.sessionId, data: keyData(ctx.body) }])),

  authed("GET", `${ROOM_KEYS}/keys`, (ctx) => {
    const v = targetVersion(ctx, false)
    return json({ rooms: Object.fromEntries([...v.rooms].filter(([, s]) => s.size > 0).map(([roomId, sessions]) => [roomId, roomJson(sessions)])) })
  }),
  // A room without keys is an empty `sessions`, as Synapse answers.
  authed("GET", `${ROOM_KEYS}/keys/:roomId`, (ctx) => json(roomJson(targetVersion(ctx, false).rooms.get(ctx.params.roomId)))),
  authed("GET", `${ROOM_KEYS}/keys/:roomId/:sessionId`, (ctx) => {
    const data = targetVersion(ctx, false).rooms.get(ctx.params.roomId)?.get(ctx.params.sessionId)
    if (data === undefined) throw notFound("No room key for that session.")
    return json(data)
  }),

  authed("DELETE", `${ROOM_KEYS}/keys`, (ctx) => deleteKeys(ctx)),
  authed("DELETE", `${ROOM_KEYS}/keys/:roomId`, (ctx) => deleteKeys(ctx, ctx.params.roomId)),
  authed("DELETE", `${ROOM_KEYS}/keys/:roomId/:sessionId`, (ctx) => deleteKeys(ctx, ctx.params.roomId, ctx.params.sessionId))
]
