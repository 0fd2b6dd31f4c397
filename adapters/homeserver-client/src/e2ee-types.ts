/**
 * What the E2EE layer (crypto.ts) takes and gives: its options, the HTTP it needs, the requests
 * its machine hands out, and the outcomes of decrypting. Types only; crypto.ts re-exports them.
 */
import type * as sdk from "@matrix-org/matrix-sdk-crypto-wasm"
import type { RoomEvent } from "@widgethost/core"
import type { CryptoStoreCompaction } from "./crypto-store.ts"
import type { HttpRequest } from "./matrix-http.ts"
import type { OnLoadProgress } from "./load-progress.ts"

/** The HTTP the crypto machinery needs: MatrixHttp satisfies it; tests plug an in-memory server in. */
export interface CryptoHttp {
  readonly request: <T>(req: HttpRequest) => Promise<T>
}

/** A request the machine hands out for the HTTP edge to send. */
export type OutgoingRequest =
  | sdk.KeysUploadRequest
  | sdk.KeysQueryRequest
  | sdk.KeysClaimRequest
  | sdk.ToDeviceRequest
  | sdk.SignatureUploadRequest
  | sdk.RoomMessageRequest
  | sdk.KeysBackupRequest

/** Raw event JSON as it comes from the homeserver (untrusted shape). */
export type RawEvent = Readonly<Record<string, unknown>>

export type DecryptOutcome =
  | { readonly _tag: "Clear"; readonly event: RoomEvent }
  | { readonly _tag: "Decrypted"; readonly event: RoomEvent }
  /** The room key is missing (or only a later index is known): may still arrive. */
  | { readonly _tag: "Pending"; readonly sessionId: string; readonly reason: string }
  /** Will never decrypt (withheld, bad ciphertext, redacted, malformed). */
  | { readonly _tag: "Failed"; readonly reason: string }

export interface UndecryptableReport {
  readonly roomId: string
  readonly eventId: string
  /**
   * `held-too-long`: its key did not come within the hold bound; later events went ahead, and it
   * is still delivered (late) if the key comes. `failed`: it can never decrypt. `evicted`: it was
   * dropped from the late set, for good.
   */
  readonly kind: "held-too-long" | "failed" | "evicted"
  readonly reason: string
}

export interface ToDeviceUndecryptable {
  readonly sender: string
  readonly reason: string
}

export interface SyncCryptoInput {
  readonly toDevice: ReadonlyArray<unknown>
  readonly changed?: ReadonlyArray<string>
  readonly left?: ReadonlyArray<string>
  readonly oneTimeKeyCounts?: Readonly<Record<string, number>>
  /** `undefined` when the server did not say (then fallback keys are left alone). */
  readonly unusedFallbackKeyTypes?: ReadonlyArray<string>
}

export interface E2eeOptions {
  readonly userId: string
  readonly deviceId: string
  readonly http: CryptoHttp
  /** Where the crypto store lives; without it the keys die with the process. */
  readonly storeFile?: string
  /** Encrypts the store's values (crypto-wasm's store cipher). */
  readonly storePassphrase?: string
  /** When the store's journal is compacted into a new snapshot (defaults in `CryptoStoreCompaction`). */
  readonly storeCompaction?: CryptoStoreCompaction
  /** Called for a to-device message that could not be decrypted (never delivered). */
  readonly onToDeviceUndecryptable?: (report: ToDeviceUndecryptable) => void
  /** Background failures of the outgoing-request loop (they are retried next round). */
  readonly onError?: (error: unknown) => void
  /** How far loading the store is (load-progress.ts), for a progress line. */
  readonly onProgress?: OnLoadProgress
}
