/**
 * Padded standard base64 (RFC 4648 §4), strict on the way in: the length a multiple of four,
 * `=` only as the last one or two characters, nothing outside the alphabet (line breaks are
 * ignored, as MIME writers insert them). `atob` alone would accept unpadded or spaced text.
 */
import * as Result from "./result.ts"

const padded = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

export const decodeBase64 = (text: string): Result.Result<Uint8Array, string> => {
  const stripped = text.replace(/[\n\r]/g, "")
  if (!padded.test(stripped)) return Result.fail("not padded standard base64")
  const binary = atob(stripped)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return Result.succeed(bytes)
}

// String.fromCharCode takes its bytes as arguments; this many stays well under engines' argument limits.
const CHUNK = 0x8000

export const encodeBase64 = (bytes: Uint8Array): string => {
  let binary = ""
  for (let i = 0; i < bytes.length; i += CHUNK) binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK))
  return btoa(binary)
}
