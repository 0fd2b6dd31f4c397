/**
 * The HTTP edge of the crypto machine's outgoing requests (crypto.ts runs the loop): each kind
 * of request to its client-server endpoint, and the answer handed back to the machine.
 */
import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm"
import { path } from "./matrix-http.ts"
import type { CryptoHttp, OutgoingRequest } from "./e2ee-types.ts"

/** Sends one request and marks it as sent with the server's answer; a kind it does not know is left alone. */
export const sendOutgoingRequest = async (http: CryptoHttp, machine: sdk.OlmMachine, r: OutgoingRequest): Promise<void> => {
  let response: unknown
  if (r instanceof sdk.KeysUploadRequest) response = await http.request({ method: "POST", path: "/_matrix/client/v3/keys/upload", body: r.body })
  else if (r instanceof sdk.KeysQueryRequest) response = await http.request({ method: "POST", path: "/_matrix/client/v3/keys/query", body: r.body })
  else if (r instanceof sdk.KeysClaimRequest) response = await http.request({ method: "POST", path: "/_matrix/client/v3/keys/claim", body: r.body })
  else if (r instanceof sdk.ToDeviceRequest)
    response = await http.request({ method: "PUT", path: path`/_matrix/client/v3/sendToDevice/${r.event_type}/${r.txn_id}`, body: r.body })
  else if (r instanceof sdk.SignatureUploadRequest) response = await http.request({ method: "POST", path: "/_matrix/client/v3/keys/signatures/upload", body: r.body })
  else if (r instanceof sdk.RoomMessageRequest)
    response = await http.request({ method: "PUT", path: path`/_matrix/client/v3/rooms/${r.room_id}/send/${r.event_type}/${r.txn_id}`, body: r.body })
  else if (r instanceof sdk.KeysBackupRequest)
    response = await http.request({ method: "PUT", path: "/_matrix/client/v3/room_keys/keys", query: { version: r.version }, body: r.body })
  else return
  if (r.id !== undefined) await machine.markRequestAsSent(r.id, r.type, JSON.stringify(response))
}
