/**
 * The port's reads that matrix-js-sdk has no cached answer for, through the client's own HTTP
 * (its base URL, token and retries): an event's relations (MSC3869), decrypted by the client's
 * crypto like `readEvents`; room account data; and an OpenID token (MSC1960).
 */
import type { OpenIdToken, RelationsPage, RelationsQuery, RoomEvent } from "@widgethost/core"
import { ClientPrefix, type IEvent, type MatrixClient, Method, MatrixError } from "matrix-js-sdk"
import { decrypted } from "./read-events.ts"
import { portError, viaSdk } from "./sdk-errors.ts"

const segment = encodeURIComponent

export const readRelations = async (client: MatrixClient, query: RelationsQuery): Promise<RelationsPage> => {
  // The endpoint filters by type only under a rel_type, and on the wire (ciphertext in encrypted
  // rooms): ask by type only in a clear room, and match the decrypted type here in every case.
  const encrypted = client.getRoom(query.roomId)?.hasEncryptionStateEvent() ?? false
  let path = `/rooms/${segment(query.roomId)}/relations/${segment(query.eventId)}`
  if (query.relType !== undefined) path += `/${segment(query.relType)}`
  if (query.relType !== undefined && query.eventType !== undefined && !encrypted) path += `/${segment(query.eventType)}`
  const params: Record<string, string> = {}
  if (query.from !== undefined) params["from"] = query.from
  if (query.to !== undefined) params["to"] = query.to
  if (query.limit !== undefined) params["limit"] = String(query.limit)
  if (query.dir !== undefined) params["dir"] = query.dir
  const res = await viaSdk(() => client.http.authedRequest<{ chunk?: Array<Partial<IEvent>>; next_batch?: string; prev_batch?: string }>(Method.Get, path, params, undefined, { prefix: ClientPrefix.V1 }))
  const mapper = client.getEventMapper({ preventReEmit: true, decrypt: false })
  const events: Array<RoomEvent> = []
  for (const raw of Array.isArray(res.chunk) ? res.chunk : []) {
    const event = await decrypted(client, mapper({ ...raw, room_id: query.roomId }))
    if (event !== undefined && (query.eventType === undefined || event.type === query.eventType)) events.push(event)
  }
  return { events, ...(typeof res.next_batch === "string" ? { nextBatch: res.next_batch } : {}), ...(typeof res.prev_batch === "string" ? { prevBatch: res.prev_batch } : {}) }
}

export const readRoomAccountData = async (client: MatrixClient, roomId: string, type: string): Promise<Readonly<Record<string, unknown>> | undefined> => {
  const path = `/user/${segment(client.getSafeUserId())}/rooms/${segment(roomId)}/account_data/${segment(type)}`
  try {
    return await client.http.authedRequest<Record<string, unknown>>(Method.Get, path)
  } catch (error) {
    // Nothing set is an answer, not a failure; every other refusal goes to the widget.
    if (error instanceof MatrixError && error.httpStatus === 404 && error.errcode === "M_NOT_FOUND") return undefined
    throw portError(error)
  }
}

export const requestOpenIdToken = async (client: MatrixClient): Promise<OpenIdToken> => {
  const token = await viaSdk(() => client.getOpenIdToken())
  return { access_token: token.access_token, token_type: token.token_type, matrix_server_name: token.matrix_server_name, expires_in: token.expires_in }
}
