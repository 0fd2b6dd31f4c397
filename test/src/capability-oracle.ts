/**
 * The capability oracle: what the Matrix widget spec says a set of approved capabilities allows,
 * written as directly as the text reads (no index, no compilation), for the property tests to
 * hold the capability engine against (test/property/capability-oracle.test.ts).
 */

export type Dir = "send" | "receive"

export interface OEvent {
  readonly type: string
  readonly room_id: string
  readonly state_key?: string
  readonly content?: unknown
}

/** The text after `m.<dir>.<kind>:` or its unstable twin, or null when `cap` is not of that kind. */
export const afterPrefix = (cap: string, dir: Dir, kind: "event" | "state_event" | "to_device"): string | null => {
  const unstable = kind === "to_device" ? "org.matrix.msc3819." : "org.matrix.msc2762."
  for (const prefix of [`m.${dir}.${kind}:`, `${unstable}${dir}.${kind}:`]) {
    if (cap.startsWith(prefix)) return cap.substring(prefix.length)
  }
  return null
}

/** An escaped head up to the first unescaped `#`, then (optionally) the literal rest. */
export const HEAD_REST = /^((?:[^\\#]|\\[\\#])*)(?:#([\s\S]*))?$/
export const unescape = (s: string) => s.replace(/\\([\\#])/g, "$1")

/** State capability text → [type, key or null for any], or null when invalid. */
export const oracleState = (text: string): readonly [string, string | null] | null => {
  const m = HEAD_REST.exec(text)
  if (m === null) return null
  const type = unescape(m[1]!)
  if (type === "") return null
  return [type, m[2] ?? null]
}

/**
 * Message capability text → [type, msgtype or null for any], or null when invalid. MSC2762:
 * "`m.room.message` is the only non-state event which also makes use of this `#` system" and
 * "Other non-state event types with `#` in them do not get parsed in any special way".
 */
export const oracleMessage = (text: string): readonly [string, string | null] | null => {
  if (text.startsWith("m.room.message#")) return ["m.room.message", text.slice("m.room.message#".length)]
  return text === "" ? null : [text, null]
}

export const contentMsgtype = (content: unknown): string | null => {
  if (content === null || typeof content !== "object") return null
  const v = (content as Record<string, unknown>)["msgtype"]
  return typeof v === "string" ? v : null
}

export const oracleMay = (approved: ReadonlyArray<string>, dir: Dir, event: Omit<OEvent, "room_id">): boolean => {
  for (const cap of approved) {
    if (event.state_key !== undefined) {
      const text = afterPrefix(cap, dir, "state_event")
      if (text === null) continue
      const parsed = oracleState(text)
      if (parsed === null) continue
      if (parsed[0] === event.type && (parsed[1] === null || parsed[1] === event.state_key)) return true
    } else {
      const text = afterPrefix(cap, dir, "event")
      if (text === null) continue
      const parsed = oracleMessage(text)
      if (parsed === null) continue
      if (parsed[0] !== event.type) continue
      if (parsed[1] === null) return true
      if (event.type === "m.room.message" && parsed[1] === contentMsgtype(event.content)) return true
    }
  }
  return false
}

export const oracleMayRead = (
  approved: ReadonlyArray<string>,
  query: { readonly type: string; readonly stateKey?: string | true; readonly msgtype?: string }
): boolean => {
  for (const cap of approved) {
    if (query.stateKey !== undefined) {
      const text = afterPrefix(cap, "receive", "state_event")
      const parsed = text === null ? null : oracleState(text)
      if (parsed === null || parsed[0] !== query.type) continue
      if (parsed[1] === null || parsed[1] === query.stateKey) return true
    } else {
      const text = afterPrefix(cap, "receive", "event")
      const parsed = text === null ? null : oracleMessage(text)
      if (parsed === null || parsed[0] !== query.type) continue
      if (parsed[1] === null || parsed[1] === query.msgtype) return true
    }
  }
  return false
}

export const oracleToDevice = (approved: ReadonlyArray<string>, dir: Dir, type: string): boolean =>
  approved.some((cap) => {
    const text = afterPrefix(cap, dir, "to_device")
    // MSC3819 defines no separator and no escapes: the text is the type.
    return text !== null && text !== "" && text === type
  })

export const oracleUseRoom = (approved: ReadonlyArray<string>, room: string, home: string | undefined): boolean => {
  if (room === home) return true
  for (const cap of approved) {
    for (const prefix of ["m.timeline:", "org.matrix.msc2762.timeline:"]) {
      if (!cap.startsWith(prefix)) continue
      const target = cap.substring(prefix.length)
      if (target === "*" || (target !== "" && target === room)) return true
    }
  }
  return false
}
