/**
 * Generators for the capability property tests: capability strings (structured, plain, garbage,
 * with `#` and `\` escaped or not), subscribers, events, churn of the routing index.
 */
import fc from "fast-check"
import { afterPrefix, oracleMessage, oracleState, type OEvent } from "./capability-oracle.ts"

export const ROOMS = ["!a:x", "!b:x", "!c:x", "!d:y"]
// Types with `#` and `\` in them, escaped or not: the issue's `org.example.\#hash` and
// `m.room.message\#m.text` among them (literal message types, not escapes).
export const TYPES = ["m.room.message", "m.room.name", "m.room.member", "m.reaction", "org.example.#test", "a\\b", "#", "m.room.message#m.text", "x", "org.example.\\#hash", "org.example.#hash", "m.room.message\\#m.text"]
export const KEYS = ["", "m.text", "m.emote", "#m.text", "@a:x", "\\", "hello", "a#b"]

export const escapeType = (t: string) => t.replace(/\\/g, "\\\\").replace(/#/g, "\\#")

export const eventPrefixes = [
  "m.send.event:", "m.receive.event:", "m.send.state_event:", "m.receive.state_event:",
  "org.matrix.msc2762.send.event:", "org.matrix.msc2762.receive.event:",
  "org.matrix.msc2762.send.state_event:", "org.matrix.msc2762.receive.state_event:",
  "m.send.to_device:", "m.receive.to_device:",
  "org.matrix.msc3819.send.to_device:", "org.matrix.msc3819.receive.to_device:"
]

export const structured = fc
  .tuple(
    fc.constantFrom(...eventPrefixes),
    fc.constantFrom(...TYPES),
    fc.boolean(),
    fc.option(fc.constantFrom(...KEYS), { nil: undefined })
  )
  .map(([prefix, type, escaped, key]) => prefix + (escaped ? escapeType(type) : type) + (key === undefined ? "" : `#${key}`))

export const timeline = fc
  .tuple(fc.constantFrom("m.timeline:", "org.matrix.msc2762.timeline:"), fc.constantFrom(...ROOMS, "*", "", "!zz:x"))
  .map(([p, r]) => p + r)

export const plain = fc.constantFrom(
  "m.sticker",
  "m.turn_servers",
  "town.robin.msc3846.turn_servers",
  "m.read.event:m.reaction",
  "org.matrix.msc2762.read.state_event:m.room.name",
  "m.receive.event",
  ""
)

export const garbage = fc
  .tuple(
    fc.constantFrom(...eventPrefixes, "m.timeline:", ""),
    fc.string({ unit: fc.constantFrom("#", "\\", "m", ".", "room", "message", "x", "a", "b", "!a:x"), maxLength: 6 })
  )
  .map(([p, s]) => p + s)

export const capString = fc.oneof(
  { arbitrary: structured, weight: 6 },
  { arbitrary: timeline, weight: 2 },
  { arbitrary: plain, weight: 1 },
  { arbitrary: garbage, weight: 2 }
)

export interface Subscriber {
  readonly approved: ReadonlyArray<string>
  readonly home: string | undefined
}

export const subscriber: fc.Arbitrary<Subscriber> = fc.record({
  approved: fc.array(capString, { maxLength: 7 }),
  home: fc.option(fc.constantFrom(...ROOMS), { nil: undefined })
})

export const content = fc.oneof(
  fc.constantFrom(...KEYS).map((msgtype): unknown => ({ msgtype, body: "." })),
  fc.constantFrom<unknown>({}, undefined, null, { msgtype: 3 }, "m.text")
)

export const event: fc.Arbitrary<OEvent> = fc
  .record({
    type: fc.constantFrom(...TYPES, "m.room.redaction"),
    room_id: fc.constantFrom(...ROOMS, "!zz:x"),
    state_key: fc.option(fc.constantFrom(...KEYS), { nil: undefined }),
    content
  })
  .map(({ type, room_id, state_key, content }) => {
    const base = content === undefined ? { type, room_id } : { type, room_id, content }
    return state_key === undefined ? base : { ...base, state_key }
  })

export type Op = { readonly op: "set"; readonly key: number; readonly sub: Subscriber } | { readonly op: "delete"; readonly key: number }

export const ops: fc.Arbitrary<ReadonlyArray<Op>> = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant("set" as const), key: fc.nat(11), sub: subscriber }),
    fc.record({ op: fc.constant("delete" as const), key: fc.nat(11) })
  ),
  { maxLength: 8 }
)

/**
 * Events shaped after the subscribers' own capabilities (read with the oracle), so that deliveries
 * are common and not just refusals; `salt` varies the room and the msgtype.
 */
export const derivedEvents = (subs: ReadonlyArray<Subscriber>, salt: number): OEvent[] => {
  const out: OEvent[] = []
  subs.forEach((s, i) => {
    s.approved.forEach((cap, j) => {
      const n = salt + i * 7 + j * 3
      const room = n % 3 === 0 && s.home !== undefined ? s.home : ROOMS[n % ROOMS.length]!
      for (const dir of ["send", "receive"] as const) {
        const state = afterPrefix(cap, dir, "state_event")
        const stateParsed = state === null ? null : oracleState(state)
        if (stateParsed !== null) {
          out.push({ type: stateParsed[0], room_id: room, state_key: stateParsed[1] ?? KEYS[n % KEYS.length]! })
        }
        const message = afterPrefix(cap, dir, "event")
        const messageParsed = message === null ? null : oracleMessage(message)
        if (messageParsed !== null) {
          const msgtype = n % 4 === 0 ? KEYS[n % KEYS.length]! : (messageParsed[1] ?? "m.text")
          out.push({ type: messageParsed[0], room_id: room, content: { msgtype } })
        }
      }
    })
  })
  return out
}
