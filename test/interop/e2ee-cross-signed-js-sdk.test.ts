/**
 * widgethost's device as a real client sees it: matrix-js-sdk 36 with its Rust crypto, against the
 * embedded homeserver, in an encrypted room with a widgethost account (the HTTP + E2EE adapter).
 * After widgethost bootstraps cross-signing, the peer sees the device as signed by its owner, and
 * with the peer excluding devices not signed by their owner (MSC4153's
 * `OnlySignedDevicesIsolationMode`, where Element is heading) messages still flow both ways. With
 * an account whose identity and secret storage the SDK set up, a widgethost device signs itself
 * from 4S with the SDK's recovery key. The control: an account that never bootstrapped gets
 * neither the peer's room key nor its trust.
 */
import { Effect } from "effect"
import * as sdk from "matrix-js-sdk"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import type { RoomEvent } from "@widgethost/core"
import { ensureCrossSigned } from "@widgethost/homeserver-client"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"
import type { UndecryptableReport } from "@widgethost/homeserver-client"
import { useE2eeWorld } from "../src/e2ee-world.ts"
import { encryptedRoomWith, rustCryptoPeer, waitFor } from "../src/js-sdk-peer.ts"

const world = useE2eeWorld("widgethost-xsigned-")

interface Widgethost {
  readonly port: MatrixHomeserver
  readonly events: Array<RoomEvent>
  readonly undecryptable: Array<UndecryptableReport>
}

const widgethost = async (name: string, options: { readonly crossSign: boolean }): Promise<Widgethost> => {
  const password = `${name}-password`
  await world.hs.createUser(name, password)
  const undecryptable: Array<UndecryptableReport> = []
  const port = await connectHomeserver({
    baseUrl: world.hs.baseUrl,
    auth: { user: name, password },
    dataDir: join(world.root, name),
    sync: { timeoutMs: 1_000 },
    hold: { maxHoldMs: 1_500 },
    onUndecryptable: (r) => undecryptable.push(r)
  })
  world.cleanups.push(() => port.stop())
  if (options.crossSign) {
    const outcome = await ensureCrossSigned({ e2ee: port.e2ee, http: port.http, password, recoveryKeyFile: join(world.root, name, "recovery-key.txt") })
    expect(outcome._tag).toBe("Bootstrapped")
  }
  const events: Array<RoomEvent> = []
  port.subscribe((u) => {
    if (u._tag === "RoomEvent") events.push(u.event)
  })
  return { port, events, undecryptable }
}

/** The shared Rust-crypto peer (`js-sdk-peer.ts`), its cross-signing keys checked to be on its device. */
const peer = async (name: string, storageKey?: { current?: Uint8Array }): Promise<sdk.MatrixClient> => {
  const client = await rustCryptoPeer(name, { ...world, ...(storageKey === undefined ? {} : { storageKey }) })
  expect((await client.getCrypto()!.getCrossSigningStatus()).publicKeysOnDevice).toBe(true)
  return client
}

const encryptedRoom = (host: Widgethost, client: sdk.MatrixClient): Promise<string> => encryptedRoomWith(host.port, client)

/** The peer's decrypted view of the room's messages. */
const peerBodies = (client: sdk.MatrixClient, roomId: string): Array<unknown> =>
  (client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? []).filter((e) => e.getType() === "m.room.message" && !e.isDecryptionFailure()).map((e): unknown => e.getContent<{ body?: unknown }>().body)

const hostBodies = (host: Widgethost, roomId: string) => host.events.filter((e) => e.room_id === roomId && e.type === "m.room.message").map((e) => e.content["body"])

const say = (host: Widgethost, roomId: string, body: string) =>
  Effect.runPromise(host.port.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { msgtype: "m.text", body } }))

describe("a cross-signed widgethost device, seen by matrix-js-sdk with Rust crypto", () => {
  it("is signed by its owner in the peer's eyes, and messages flow both ways with the peer excluding insecure devices", async () => {
    const host = await widgethost("widgethost", { crossSign: true })
    const bob = await peer("bob")
    const roomId = await encryptedRoom(host, bob)
    const crypto = bob.getCrypto()!
    await crypto.getUserDeviceInfo([host.port.userId], true)
    const status = await crypto.getDeviceVerificationStatus(host.port.userId, host.port.deviceId)
    expect(status?.signedByOwner).toBe(true)
    expect(status?.crossSigningVerified).toBe(false) // bob has not verified the widgethost user himself

    await say(host, roomId, "from the widgethost")
    await waitFor("bob decrypting the widgethost's message", () => peerBodies(bob, roomId).includes("from the widgethost"))
    const received = bob.getRoom(roomId)!.getLiveTimeline().getEvents().find((e) => e.getContent<{ body?: unknown }>().body === "from the widgethost")!
    expect(received.isEncrypted()).toBe(true)
    expect(received.getSender()).toBe(host.port.userId)

    await bob.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "from bob" })
    await waitFor("the widgethost decrypting bob's message", () => hostBodies(host, roomId).includes("from bob"))
    expect(host.undecryptable).toEqual([])
  })

  it("recovery-key path: the peer bootstraps its account with secret storage; a widgethost device of that account signs itself with the peer's recovery key", async () => {
    const storageKey: { current?: Uint8Array } = {}
    const bob = await peer("bob", storageKey)
    const crypto = bob.getCrypto()!
    let recoveryKey = ""
    await crypto.bootstrapSecretStorage({
      setupNewSecretStorage: true,
      createSecretStorageKey: async () => {
        const key = await crypto.createRecoveryKeyFromPassphrase()
        recoveryKey = key.encodedPrivateKey!
        storageKey.current = key.privateKey
        return key
      }
    })
    expect(await bob.secretStorage.isStored("m.cross_signing.master")).toBeTruthy()

    const port = await connectHomeserver({ baseUrl: world.hs.baseUrl, auth: { user: "bob", password: "bob-password" }, dataDir: join(world.root, "bob-widgethost"), sync: { timeoutMs: 1_000 } })
    world.cleanups.push(() => port.stop())
    expect(await ensureCrossSigned({ e2ee: port.e2ee, http: port.http })).toMatchObject({ _tag: "Unverified" })
    expect(await ensureCrossSigned({ e2ee: port.e2ee, http: port.http, recoveryKey })).toEqual({ _tag: "Trusted", restored: true })
    await waitFor("bob's client seeing the widgethost device as verified", async () => {
      await crypto.getUserDeviceInfo([bob.getUserId()!], true)
      const status = await crypto.getDeviceVerificationStatus(bob.getUserId()!, port.deviceId)
      return status?.signedByOwner === true && status.crossSigningVerified
    })
  })

  it("control: a device that never cross-signed is not signed in the peer's eyes and gets no room key from it", async () => {
    const host = await widgethost("unsigned", { crossSign: false })
    const bob = await peer("bob")
    const roomId = await encryptedRoom(host, bob)
    const crypto = bob.getCrypto()!
    await crypto.getUserDeviceInfo([host.port.userId], true)
    expect((await crypto.getDeviceVerificationStatus(host.port.userId, host.port.deviceId))?.signedByOwner).toBe(false)
    await bob.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "not for unsigned devices" })
    await waitFor("the widgethost giving up on bob's message", () => host.undecryptable.length > 0)
    // The peer withholds its room key from the unsigned device and says why (m.room_key.withheld).
    expect(host.undecryptable).toMatchObject([{ roomId, kind: "failed", reason: "m.unverified" }])
    expect(hostBodies(host, roomId)).toEqual([])
  })
})
