import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm"
import { randomBytes } from "node:crypto"
import { mkdtemp, readFile, rm, stat } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { ensureCrossSigned } from "./cross-signing.ts"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type MatrixHomeserver } from "./matrix-homeserver.ts"
import { decodeRecoveryKey, encodeRecoveryKey } from "./secret-storage.ts"

let hs: EmbeddedHomeserver
let root: string
const ports: Array<MatrixHomeserver> = []
beforeEach(async () => {
  hs = await startEmbeddedHomeserver()
  root = await mkdtemp(join(tmpdir(), "widgethost-xsign-"))
})
afterEach(async () => {
  for (const p of ports.splice(0)) await p.stop().catch(() => undefined)
  await hs.close()
  await rm(root, { recursive: true, force: true })
})

const PASSWORD = "alice-password"
const connect = async (dir: string): Promise<MatrixHomeserver> => {
  const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user: "alice", password: PASSWORD }, dataDir: join(root, dir), retry: { maxAttempts: 1 } })
  ports.push(port)
  return port
}

/** What another device's crypto machine concludes about `deviceId` of `port`'s user, after a fresh key query. */
const signedByOwner = async (observer: MatrixHomeserver, of: MatrixHomeserver): Promise<boolean> =>
  observer.e2ee.exclusive(async (machine, send) => {
    await send(machine.queryKeysForUsers([new sdk.UserId(of.userId)]))
    const device = await machine.getDevice(new sdk.UserId(of.userId), new sdk.DeviceId(of.deviceId))
    try {
      return device?.isCrossSignedByOwner() === true
    } finally {
      device?.free()
    }
  })

describe("cross-signing", () => {
  it("bootstraps an identity, signs the device, stores the keys in 4S and writes the recovery key once, mode 0600", async () => {
    await hs.ensureUser("alice", PASSWORD)
    const first = await connect("one")
    const recoveryKeyFile = join(root, "recovery-key.txt")
    expect(await ensureCrossSigned({ e2ee: first.e2ee, http: first.http, password: PASSWORD, recoveryKeyFile })).toEqual({ _tag: "Bootstrapped", recoveryKeyFile })
    expect((await stat(recoveryKeyFile)).mode & 0o777).toBe(0o600)
    const recoveryKey = (await readFile(recoveryKeyFile, "utf8")).trim()
    expect(decodeRecoveryKey(recoveryKey)).toHaveLength(32)
    // Again: nothing to do, and the recovery key is not rewritten.
    expect(await ensureCrossSigned({ e2ee: first.e2ee, http: first.http, password: PASSWORD, recoveryKeyFile })).toEqual({ _tag: "Trusted", restored: false })
    expect((await readFile(recoveryKeyFile, "utf8")).trim()).toBe(recoveryKey)

    // A second device of the account: unverified until it is given the recovery key.
    const second = await connect("two")
    expect(await ensureCrossSigned({ e2ee: second.e2ee, http: second.http })).toMatchObject({ _tag: "Unverified" })
    expect(await signedByOwner(second, first)).toBe(true)
    expect(await signedByOwner(first, second)).toBe(false)
    expect(await ensureCrossSigned({ e2ee: second.e2ee, http: second.http, recoveryKey })).toEqual({ _tag: "Trusted", restored: true })
    expect(await signedByOwner(first, second)).toBe(true)
  })

  it("answers a UIA challenge with the account's password: a wrong one fails the bootstrap and publishes nothing; a wrong recovery key is refused", async () => {
    await hs.ensureUser("alice", PASSWORD)
    const first = await connect("one")
    // The embedded homeserver, as spec v1.11 allows, takes a first identity without UIA; a server
    // that asks anyway (older Synapse) is played by a fault: a bare 401 with the password flow.
    const challenge = { status: 401, body: { flows: [{ stages: ["m.login.password"] }], params: {}, session: "uia-session" } }
    hs.injectFault({ path: /\/keys\/device_signing\/upload$/, times: 1, kind: challenge })
    await expect(ensureCrossSigned({ e2ee: first.e2ee, http: first.http, password: "wrong" })).rejects.toThrow(/401 M_FORBIDDEN/)
    const query = await first.http.request<{ master_keys: object }>({ method: "POST", path: "/_matrix/client/v3/keys/query", body: { device_keys: { [first.userId]: [] } } })
    expect(query.master_keys).toEqual({})
    hs.injectFault({ path: /\/keys\/device_signing\/upload$/, times: 1, kind: challenge })
    expect(await ensureCrossSigned({ e2ee: first.e2ee, http: first.http, password: PASSWORD, recoveryKeyFile: join(root, "rk") })).toMatchObject({ _tag: "Bootstrapped" })
    const second = await connect("two")
    const otherKey = encodeRecoveryKey(randomBytes(32))
    await expect(ensureCrossSigned({ e2ee: second.e2ee, http: second.http, recoveryKey: otherKey })).rejects.toThrow(/not the account's secret storage key/)
  })
})
