import { asObject, optString } from "./decode.ts"
import type { JsonObject } from "./decode.ts"
import { badJson, forbidden, notFound } from "./errors.ts"
import { defaultPushRules } from "./push-rules.ts"
import type { JournalRecord } from "./records.ts"
import { authorize, eventRecord, requireRoom } from "./room-rules.ts"
import type { Route } from "./routing.ts"
import { authed, CLIENT, json, open } from "./routing.ts"
import type { Store } from "./store.ts"

/**
 * What a user says about themselves: profile, account data (global and per room), presence and
 * push rules. Profile changes are copied into the member event of every joined room, as
 * Synapse does, because that is where other clients read display names from.
 */

const profileOf = (store: Store, userId: string) => {
  const user = store.users.get(userId)
  if (user === undefined) throw notFound("Profile was not found")
  return user
}

const setProfileField = async (store: Store, userId: string, field: "displayname" | "avatar_url", value: string | null): Promise<void> => {
  const records: Array<JournalRecord> = [{ t: "profile", userId, [field]: value }]
  for (const roomId of store.userRooms.get(userId) ?? []) {
    const room = store.rooms.get(roomId)!
    const member = room.stateEvent("m.room.member", userId)
    if (member === undefined || member.event.content.membership !== "join") continue
    const content: JsonObject = { ...member.event.content }
    if (value === null) delete content[field]
    else content[field] = value
    const proposal = { roomId, sender: userId, type: "m.room.member", stateKey: userId, content }
    authorize(room, proposal)
    records.push(eventRecord(store, proposal).record)
  }
  await store.commit(records)
}

const profileField = (field: "displayname" | "avatar_url"): ReadonlyArray<Route> => [
  open("GET", `${CLIENT}/profile/:userId/${field}`, ({ env, params }) => {
    const value = profileOf(env.store, params.userId)[field]
    return json(value === undefined ? {} : { [field]: value })
  }),
  authed("PUT", `${CLIENT}/profile/:userId/${field}`, async ({ env, auth, params, body }) => {
    if (params.userId !== auth.userId) throw forbidden("Cannot set another user's profile.")
    const value = optString(asObject(body), field) ?? null
    if (value !== null && value.length > 256) throw badJson(`'${field}' is too long.`)
    await setProfileField(env.store, auth.userId, field, value)
    return json({})
  })
]

const accountData = (store: Store, userId: string, roomId: string | undefined) =>
  roomId === undefined ? store.users.get(userId)!.accountData : store.users.get(userId)!.roomAccountData.get(roomId)

export const routes: ReadonlyArray<Route> = [
  open("GET", `${CLIENT}/profile/:userId`, ({ env, params }) => {
    const user = profileOf(env.store, params.userId)
    return json({
      ...(user.displayname !== undefined && { displayname: user.displayname }),
      ...(user.avatar_url !== undefined && { avatar_url: user.avatar_url })
    })
  }),
  ...profileField("displayname"),
  ...profileField("avatar_url"),
  authed("GET", `${CLIENT}/user/:userId/account_data/:type`, ({ env, auth, params }) => {
    if (params.userId !== auth.userId) throw forbidden("Cannot read another user's account data.")
    const entry = accountData(env.store, auth.userId, undefined)?.get(params.type)
    if (entry === undefined) throw notFound("Account data not found")
    return json(entry.value)
  }),
  authed("PUT", `${CLIENT}/user/:userId/account_data/:type`, async ({ env, auth, params, body }) => {
    if (params.userId !== auth.userId) throw forbidden("Cannot add account data for other users.")
    const content = asObject(body)
    await env.store.commit([{ t: "account_data", pos: env.store.nextPos(), userId: auth.userId, type: params.type, content }])
    return json({})
  }),
  authed("GET", `${CLIENT}/user/:userId/rooms/:roomId/account_data/:type`, ({ env, auth, params }) => {
    if (params.userId !== auth.userId) throw forbidden("Cannot read another user's account data.")
    const entry = accountData(env.store, auth.userId, params.roomId)?.get(params.type)
    if (entry === undefined) throw notFound("Room account data not found")
    return json(entry.value)
  }),
  authed("PUT", `${CLIENT}/user/:userId/rooms/:roomId/account_data/:type`, async ({ env, auth, params, body }) => {
    if (params.userId !== auth.userId) throw forbidden("Cannot add account data for other users.")
    requireRoom(env.store, params.roomId)
    const content = asObject(body)
    await env.store.commit([
      { t: "account_data", pos: env.store.nextPos(), userId: auth.userId, roomId: params.roomId, type: params.type, content }
    ])
    return json({})
  }),
  // Presence is not tracked (no federation, no idle detection): everyone reads as offline, and
  // setting it is accepted so clients that set it on start do not fail.
  authed("GET", `${CLIENT}/presence/:userId/status`, ({ env, params }) => {
    profileOf(env.store, params.userId)
    return json({ presence: "offline" })
  }),
  authed("PUT", `${CLIENT}/presence/:userId/status`, ({ auth, params, body }) => {
    if (params.userId !== auth.userId) throw forbidden("Cannot set another user's presence.")
    const presence = asObject(body).presence
    if (!["online", "offline", "unavailable"].includes(presence as string)) throw badJson("'presence' must be online, offline or unavailable.")
    return json({})
  }),
  authed("GET", `${CLIENT}/pushrules`, ({ auth }) => json(defaultPushRules(auth.userId))),
  authed("GET", `${CLIENT}/pushrules/global`, ({ auth }) => json(defaultPushRules(auth.userId).global))
]
