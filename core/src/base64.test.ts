import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decodeBase64, encodeBase64 } from "./base64.ts"

/** given the text, want its bytes or a refusal (RFC 4648 §4, padded). */
const table: ReadonlyArray<readonly [text: string, want: ReadonlyArray<number> | "refused"]> = [
  ["", []],
  ["aGk=", [104, 105]],
  ["aGVsbG8=", [104, 101, 108, 108, 111]],
  ["aA==", [104]],
  ["+/8=", [251, 255]],
  ["aGVs\r\nbG8=", [104, 101, 108, 108, 111]],
  ["aGk", "refused"],
  ["aA", "refused"],
  ["aGk==", "refused"],
  ["a=k=", "refused"],
  ["aA=a", "refused"],
  ["aGVs bG8=", "refused"],
  ["aGk-", "refused"],
  ["aGk_", "refused"],
  ["aGé=", "refused"],
  ["====", "refused"]
]

describe("decodeBase64", () => {
  it.each(table)("%j", (text, want) => {
    const got = decodeBase64(text)
    expect(got._tag === "Success" ? [...got.success] : "refused").toEqual(want)
  })

  it("agrees with Node's decoder on every padded string", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const text = Buffer.from(bytes).toString("base64")
        const got = decodeBase64(text)
        expect(got._tag === "Success" ? [...got.success] : got.failure).toEqual([...bytes])
      })
    )
  })
})

describe("encodeBase64", () => {
  it("agrees with Node's encoder, across the chunk boundary too", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => encodeBase64(bytes) === Buffer.from(bytes).toString("base64")))
    const large = Uint8Array.from({ length: 0x8000 * 2 + 5 }, (_, i) => (i * 7) & 0xff)
    expect(encodeBase64(large)).toBe(Buffer.from(large).toString("base64"))
  })
})
