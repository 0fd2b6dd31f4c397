/**
 * A matrix-js-sdk peer with Rust crypto on the embedded homeserver, as current Element sets one
 * up: its own cross-signing, encrypting to and decrypting from owner-signed devices only (MSC4153's
 * `OnlySignedDevicesIsolationMode`). Shared by the E2EE interop tests that need a real client on
 * the other side.
 */
import * as sdk from "matrix-js-sdk"
import { OnlySignedDevicesIsolationMode, type ShowSasCallbacks, type VerificationRequest, VerificationRequestEvent, VerifierEvent } from "matrix-js-sdk/lib/crypto-api/index.js"
import type { EmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import type { MatrixHomeserver } from "@widgethost/homeserver-client"
import { quietLogger } from "./js-sdk-logger.ts"

export const waitFor = async (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export interface PeerOptions {
  readonly hs: EmbeddedHomeserver
  /** Where the SDK's warnings go (shown by the test when it fails). */
  readonly logs: Array<string>
  /** The test's cleanups: the client is stopped there. */
  readonly cleanups: Array<() => unknown>
  /** The 4S key the SDK asks for when it stores secrets under a key it just made. */
  readonly storageKey?: { current?: Uint8Array }
}

/** A syncing peer `name` (created on `hs`) with its cross-signing bootstrapped. */
export const rustCryptoPeer = async (name: string, options: PeerOptions): Promise<sdk.MatrixClient> => {
  const { hs, logs, cleanups, storageKey } = options
  const password = `${name}-password`
  const session = await hs.createUser(name, password)
  const client = sdk.createClient({
    baseUrl: hs.baseUrl,
    userId: session.userId,
    accessToken: session.accessToken,
    deviceId: session.deviceId,
    logger: quietLogger(logs),
    cryptoCallbacks: {
      getSecretStorageKey: ({ keys }) => {
        const keyId = Object.keys(keys)[0]
        return Promise.resolve(keyId === undefined || storageKey?.current === undefined ? null : [keyId, storageKey.current])
      }
    }
  })
  await client.initRustCrypto({ useIndexedDB: false })
  client.getCrypto()!.setDeviceIsolationMode(new OnlySignedDevicesIsolationMode())
  cleanups.push(() => client.stopClient())
  const prepared = new Promise<void>((resolve) => {
    client.on(sdk.ClientEvent.Sync, (state) => {
      if (state === sdk.SyncState.Prepared) resolve()
    })
  })
  await client.startClient()
  await prepared
  await client.getCrypto()!.bootstrapCrossSigning({
    authUploadDeviceSigningKeys: async (makeRequest) => {
      await makeRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: session.userId }, password })
    }
  })
  return client
}

/** The widgethost account makes an encrypted room and invites the peer, who joins; both are syncing. */
export const encryptedRoomWith = async (port: MatrixHomeserver, client: sdk.MatrixClient): Promise<string> => {
  const { room_id: roomId } = await port.http.request<{ room_id: string }>({
    method: "POST",
    path: "/_matrix/client/v3/createRoom",
    body: { preset: "private_chat", invite: [client.getUserId()], initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }] }
  })
  const synced = port.nextSync()
  port.start()
  await synced
  await waitFor("the invite", () => client.getRoom(roomId) !== null)
  await client.joinRoom(roomId)
  await waitFor("the peer's view of the encrypted room", async () => (await client.getCrypto()!.isEncryptionEnabledInRoom(roomId)) && client.getRoom(roomId)?.getMember(port.userId)?.membership === "join")
  return roomId
}

/** The peer's SAS emoji, once its verifier for `request` shows them (it starts verifying as soon as it has a verifier). */
export const peerSas = (request: VerificationRequest): Promise<ShowSasCallbacks> =>
  new Promise((resolve) => {
    const watch = () => {
      const verifier = request.verifier
      if (verifier === undefined) return
      request.off(VerificationRequestEvent.Change, watch)
      verifier.on(VerifierEvent.ShowSas, resolve)
      verifier.verify().catch(() => undefined)
    }
    request.on(VerificationRequestEvent.Change, watch)
    watch()
  })
