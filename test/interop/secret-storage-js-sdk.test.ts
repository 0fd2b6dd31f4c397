/**
 * widgethost's secret storage (adapters/src/secret-storage.ts, node:crypto) against matrix-js-sdk's
 * own (WebCrypto): each side reads what the other wrote, so a recovery key or a stored secret
 * made by one is usable by the other, and by Element, which uses the SDK's code.
 */
import { randomBytes } from "node:crypto"
import { decodeRecoveryKey as sdkDecodeRecoveryKey, encodeRecoveryKey as sdkEncodeRecoveryKey } from "matrix-js-sdk/lib/crypto-api/recovery-key.js"
import { calculateKeyCheck } from "matrix-js-sdk/lib/secret-storage.js"
import sdkDecrypt from "matrix-js-sdk/lib/utils/decryptAESSecretStorageItem.js"
import sdkEncrypt from "matrix-js-sdk/lib/utils/encryptAESSecretStorageItem.js"
import { describe, expect, it } from "vitest"
import { decodeRecoveryKey, decryptSecret, describeKey, encodeRecoveryKey, encryptSecret, keyMatches } from "@widgethost/homeserver-client"

describe("secret storage: widgethost and matrix-js-sdk read each other", () => {
  it("recovery keys: the same text both ways, for random keys and keys with leading zero bytes", () => {
    const keys = [randomBytes(32), randomBytes(32), Buffer.concat([Buffer.alloc(3), randomBytes(29)]), Buffer.alloc(32)]
    for (const key of keys) {
      const ours = encodeRecoveryKey(key)
      expect(ours).toBe(sdkEncodeRecoveryKey(key))
      expect(Buffer.from(sdkDecodeRecoveryKey(ours))).toEqual(key)
      expect(decodeRecoveryKey(ours)).toEqual(key)
      expect(decodeRecoveryKey(ours.replace(/ /g, ""))).toEqual(key)
    }
  })

  it("a recovery key with a typo or a wrong prefix is refused", () => {
    // A fixed key: with a random one, 1 typo in 256 would keep the parity right by chance.
    const good = encodeRecoveryKey(Buffer.alloc(32, 7))
    const i = good.search(/[2-9A-Za-z]/)
    const typo = good.slice(0, i + 5) + (good[i + 5] === "a" ? "b" : "a") + good.slice(i + 6)
    expect(() => decodeRecoveryKey(typo)).toThrow()
    expect(() => decodeRecoveryKey("EsTc")).toThrow(/length or prefix/)
    expect(() => decodeRecoveryKey(`${good.slice(0, -1)}0`)).toThrow(/base58/)
  })

  it("secrets: ours decrypt with the SDK's code and the SDK's with ours; a wrong key or name fails the MAC", async () => {
    const key = randomBytes(32)
    const secret = randomBytes(32).toString("base64").replace(/=+$/, "")
    const ours = encryptSecret(key, "m.cross_signing.master", secret)
    expect(await sdkDecrypt(ours, key, "m.cross_signing.master")).toBe(secret)
    const theirs = await sdkEncrypt(secret, key, "m.cross_signing.self_signing")
    expect(decryptSecret(key, "m.cross_signing.self_signing", theirs)).toBe(secret)
    expect(() => decryptSecret(randomBytes(32), "m.cross_signing.master", ours)).toThrow(/bad MAC/)
    expect(() => decryptSecret(key, "m.cross_signing.user_signing", ours)).toThrow(/bad MAC/)
  })

  it("key descriptions: our check value is the SDK's, and a wrong key does not match", async () => {
    const key = randomBytes(32)
    const description = describeKey(key)
    const sdkCheck = await calculateKeyCheck(key, description.iv)
    expect(description.mac.replace(/=+$/, "")).toBe(sdkCheck.mac.replace(/=+$/, ""))
    expect(keyMatches(key, await calculateKeyCheck(key))).toBe(true)
    expect(keyMatches(randomBytes(32), description)).toBe(false)
  })
})
