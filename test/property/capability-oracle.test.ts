/**
 * The capability engine (parse → compile → index) against an oracle written separately and naively:
 * for each question it loops over every approved string, recognises the prefixes by hand and
 * splits the type with regular expressions straight from the MSC2762 rules. No code is shared
 * with `core/src/capabilities.ts`.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { classify, type ClientHook, compilePermissions, noClientSide, RoutingIndex } from "@widgethost/core"

// --- the oracle -------------------------------------------------------------------------------

type Dir = "send" | "receive"

interface OEvent {
  readonly type: string
  readonly room_id: string
  readonly state_key?: string
  readonly content?: unknown
}

/** The text after `m.<dir>.<kind>:` or its unstable twin, or null when `cap` is not of that kind. */
const afterPrefix = (cap: string, dir: Dir, kind: "event" | "state_event" | "to_device"): string | null => {
  const unstable = kind === "to_device" ? "org.matrix.msc3819." : "org.matrix.msc2762."
  for (const prefix of [`m.${dir}.${kind}:`, `${unstable}${dir}.${kind}:`]) {
    if (cap.startsWith(prefix)) return cap.substring(prefix.length)
  }
  return null
}

/** An escaped head up to the first unescaped `#`, then (optionally) the literal rest. */
const HEAD_REST = /^((?:[^\\#]|\\[\\#])*)(?:#([\s\S]*))?$/
const unescape = (s: string) => s.replace(/\\([\\#])/g, "$1")

/** State capability text → [type, key or null for any], or null when invalid. */
const oracleState = (text: string): readonly [string, string | null] | null => {
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
const oracleMessage = (text: string): readonly [string, string | null] | null => {
  if (text.startsWith("m.room.message#")) return ["m.room.message", text.slice("m.room.message#".length)]
  return text === "" ? null : [text, null]
}

const contentMsgtype = (content: unknown): string | null => {
  if (content === null || typeof content !== "object") return null
  const v = (content as Record<string, unknown>)["msgtype"]
  return typeof v === "string" ? v : null
}

const oracleMay = (approved: ReadonlyArray<string>, dir: Dir, event: Omit<OEvent, "room_id">): boolean => {
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

const oracleMayRead = (
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

const oracleToDevice = (approved: ReadonlyArray<string>, dir: Dir, type: string): boolean =>
  approved.some((cap) => {
    const text = afterPrefix(cap, dir, "to_device")
    // MSC3819 defines no separator and no escapes: the text is the type.
    return text !== null && text !== "" && text === type
  })

const oracleUseRoom = (approved: ReadonlyArray<string>, room: string, home: string | undefined): boolean => {
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

// --- generators -------------------------------------------------------------------------------

const ROOMS = ["!a:x", "!b:x", "!c:x", "!d:y"]
// Types with `#` and `\` in them, escaped or not: the issue's `org.example.\#hash` and
// `m.room.message\#m.text` among them (literal message types, not escapes).
const TYPES = ["m.room.message", "m.room.name", "m.room.member", "m.reaction", "org.example.#test", "a\\b", "#", "m.room.message#m.text", "x", "org.example.\\#hash", "org.example.#hash", "m.room.message\\#m.text"]
const KEYS = ["", "m.text", "m.emote", "#m.text", "@a:x", "\\", "hello", "a#b"]

const escapeType = (t: string) => t.replace(/\\/g, "\\\\").replace(/#/g, "\\#")

const eventPrefixes = [
  "m.send.event:", "m.receive.event:", "m.send.state_event:", "m.receive.state_event:",
  "org.matrix.msc2762.send.event:", "org.matrix.msc2762.receive.event:",
  "org.matrix.msc2762.send.state_event:", "org.matrix.msc2762.receive.state_event:",
  "m.send.to_device:", "m.receive.to_device:",
  "org.matrix.msc3819.send.to_device:", "org.matrix.msc3819.receive.to_device:"
]

const structured = fc
  .tuple(
    fc.constantFrom(...eventPrefixes),
    fc.constantFrom(...TYPES),
    fc.boolean(),
    fc.option(fc.constantFrom(...KEYS), { nil: undefined })
  )
  .map(([prefix, type, escaped, key]) => prefix + (escaped ? escapeType(type) : type) + (key === undefined ? "" : `#${key}`))

const timeline = fc
  .tuple(fc.constantFrom("m.timeline:", "org.matrix.msc2762.timeline:"), fc.constantFrom(...ROOMS, "*", "", "!zz:x"))
  .map(([p, r]) => p + r)

const plain = fc.constantFrom(
  "m.sticker",
  "m.turn_servers",
  "town.robin.msc3846.turn_servers",
  "m.read.event:m.reaction",
  "org.matrix.msc2762.read.state_event:m.room.name",
  "m.receive.event",
  ""
)

const garbage = fc
  .tuple(
    fc.constantFrom(...eventPrefixes, "m.timeline:", ""),
    fc.string({ unit: fc.constantFrom("#", "\\", "m", ".", "room", "message", "x", "a", "b", "!a:x"), maxLength: 6 })
  )
  .map(([p, s]) => p + s)

const capString = fc.oneof(
  { arbitrary: structured, weight: 6 },
  { arbitrary: timeline, weight: 2 },
  { arbitrary: plain, weight: 1 },
  { arbitrary: garbage, weight: 2 }
)

interface Subscriber {
  readonly approved: ReadonlyArray<string>
  readonly home: string | undefined
}

const subscriber: fc.Arbitrary<Subscriber> = fc.record({
  approved: fc.array(capString, { maxLength: 7 }),
  home: fc.option(fc.constantFrom(...ROOMS), { nil: undefined })
})

const content = fc.oneof(
  fc.constantFrom(...KEYS).map((msgtype): unknown => ({ msgtype, body: "." })),
  fc.constantFrom<unknown>({}, undefined, null, { msgtype: 3 }, "m.text")
)

const event: fc.Arbitrary<OEvent> = fc
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

type Op = { readonly op: "set"; readonly key: number; readonly sub: Subscriber } | { readonly op: "delete"; readonly key: number }

const ops: fc.Arbitrary<ReadonlyArray<Op>> = fc.array(
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
const derivedEvents = (subs: ReadonlyArray<Subscriber>, salt: number): OEvent[] => {
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

// --- properties -------------------------------------------------------------------------------

const RUNS = 2000
const sortNums = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)

describe("capability engine vs oracle", () => {
  it("RoutingIndex.match returns exactly the subscribers the oracle allows, after churn", () => {
    let delivered = 0
    let withheld = 0
    fc.assert(
      fc.property(fc.array(subscriber, { minLength: 1, maxLength: 10 }), ops, fc.array(event, { minLength: 1, maxLength: 10 }), fc.nat(), (subs, churn, randomEvents, salt) => {
        const index = new RoutingIndex<number>()
        const model = new Map<number, Subscriber>()
        subs.forEach((s, key) => {
          index.set(key, compilePermissions(s.approved), s.home)
          model.set(key, s)
        })
        for (const o of churn) {
          if (o.op === "set") {
            index.set(o.key, compilePermissions(o.sub.approved), o.sub.home)
            model.set(o.key, o.sub)
          } else {
            index.delete(o.key)
            model.delete(o.key)
          }
        }
        const live = [...model.values()]
        for (const e of [...randomEvents, ...derivedEvents(live, salt)]) {
          const want: number[] = []
          for (const [key, s] of model) {
            if (oracleUseRoom(s.approved, e.room_id, s.home) && oracleMay(s.approved, "receive", e)) want.push(key)
          }
          const got = index.match(e)
          expect(got.length).toBe(new Set(got).size)
          expect(sortNums(got)).toStrictEqual(sortNums(want))
          delivered += want.length
          withheld += model.size - want.length
        }
      }),
      { numRuns: RUNS }
    )
    // guard against a vacuous run: both outcomes must be common
    expect(delivered).toBeGreaterThan(2000)
    expect(withheld).toBeGreaterThan(1000)
  })

  it("maySend / mayReceive / mayRead / mayUseRoom / to-device agree with the oracle", () => {
    let allowed = 0
    fc.assert(
      fc.property(subscriber, fc.array(event, { minLength: 1, maxLength: 10 }), fc.nat(), fc.constantFrom(...KEYS), (s, randomEvents, salt, msgtype) => {
        const p = compilePermissions(s.approved)
        for (const e of [...randomEvents, ...derivedEvents([s], salt)]) {
          const shape = { ...e }
          const send = p.maySend(shape)
          const receive = p.mayReceive(shape)
          expect(send).toBe(oracleMay(s.approved, "send", e))
          expect(receive).toBe(oracleMay(s.approved, "receive", e))
          expect(p.mayUseRoom(e.room_id, s.home)).toBe(oracleUseRoom(s.approved, e.room_id, s.home))
          expect(p.maySendToDevice(e.type)).toBe(oracleToDevice(s.approved, "send", e.type))
          expect(p.mayReceiveToDevice(e.type)).toBe(oracleToDevice(s.approved, "receive", e.type))
          for (const query of [
            { type: e.type },
            { type: e.type, msgtype },
            { type: e.type, stateKey: true as const },
            { type: e.type, stateKey: msgtype }
          ]) {
            expect(p.mayRead(query)).toBe(oracleMayRead(s.approved, query))
          }
          if (send) allowed++
          if (receive) allowed++
        }
      }),
      { numRuns: RUNS }
    )
    expect(allowed).toBeGreaterThan(1500)
  })

  it("matchToDevice returns exactly the subscribers approved for that to-device type", () => {
    fc.assert(
      fc.property(fc.array(subscriber, { minLength: 1, maxLength: 10 }), ops, fc.constantFrom(...TYPES), (subs, churn, type) => {
        const index = new RoutingIndex<number>()
        const model = new Map<number, Subscriber>()
        subs.forEach((s, key) => {
          index.set(key, compilePermissions(s.approved), s.home)
          model.set(key, s)
        })
        for (const o of churn) {
          if (o.op === "set") {
            index.set(o.key, compilePermissions(o.sub.approved), o.sub.home)
            model.set(o.key, o.sub)
          } else {
            index.delete(o.key)
            model.delete(o.key)
          }
        }
        const want = [...model].filter(([, s]) => oracleToDevice(s.approved, "receive", type)).map(([k]) => k)
        expect(sortNums(index.matchToDevice(type))).toStrictEqual(sortNums(want))
      }),
      { numRuns: RUNS }
    )
  })
})

// --- a capability is approved only if something serves it ---------------------------------------

/**
 * The client-side capabilities, read from the texts: MSC2764 (`m.always_on_screen`, `m.sticker`,
 * no unstable names), MSC2931 (`m.navigate`, `org.matrix.msc2931.navigate`), MSC2790 (`m.modals`,
 * `org.matrix.msc2790.modals`, needed by `open_modal` only), each with the hook that serves it.
 */
const CLIENT_SIDE: Readonly<Record<string, ClientHook>> = {
  "m.always_on_screen": "setAlwaysOnScreen",
  "m.sticker": "sendSticker",
  "m.navigate": "navigate",
  "org.matrix.msc2931.navigate": "navigate",
  "m.modals": "openModal",
  "org.matrix.msc2790.modals": "openModal"
}
const HOOKS: ReadonlyArray<ClientHook> = ["navigate", "setAlwaysOnScreen", "sendSticker", "openModal", "setButtonEnabled", "closeModal"]

describe("served capabilities vs oracle", () => {
  it("under an approve-all policy, a capability is approved unless invalid, unrecognised or unserved — and unserved exactly when its hook is missing", () => {
    let unserved = 0
    let servedClientSide = 0
    fc.assert(
      fc.property(
        fc.subarray([...HOOKS]),
        fc.oneof({ arbitrary: fc.constantFrom(...Object.keys(CLIENT_SIDE)), weight: 3 }, { arbitrary: capString, weight: 2 }, { arbitrary: fc.constantFrom("m.navigates", "org.matrix.msc2790.modal", "M.STICKER", "m.capability.screenshot"), weight: 1 }),
        (hooks, capability) => {
          const verdict = classify({ rules: [{ capability: "*", decision: "approve" }] }, { id: "w" }, capability, { ...noClientSide, hooks: new Set(hooks) })
          const needs = Object.hasOwn(CLIENT_SIDE, capability) ? CLIENT_SIDE[capability] : undefined
          if (needs !== undefined) {
            const served = hooks.includes(needs)
            expect(verdict).toStrictEqual(served ? { _tag: "Approve", rule: 0 } : { _tag: "Deny", reason: "unserved" })
            if (served) servedClientSide++
            else unserved++
          } else {
            expect(verdict).not.toStrictEqual({ _tag: "Deny", reason: "unserved" })
          }
        }
      ),
      { numRuns: RUNS }
    )
    expect(unserved).toBeGreaterThan(100)
    expect(servedClientSide).toBeGreaterThan(100)
  })
})

// --- MSC4039 media: exactly its four names grant the media actions --------------------------------

/**
 * Read from MSC4039: `m.upload_file` and `m.download_file`, with `org.matrix.msc4039.` "in place
 * of `m.`"; nothing else grants them, near misses included.
 */
const oracleMedia = (approved: ReadonlyArray<string>, kind: "upload" | "download"): boolean =>
  approved.some((cap) => cap === `m.${kind}_file` || cap === `org.matrix.msc4039.${kind}_file`)

const mediaName = fc.constantFrom(
  "m.upload_file",
  "org.matrix.msc4039.upload_file",
  "m.download_file",
  "org.matrix.msc4039.download_file",
  "m.upload_files",
  "org.matrix.msc4039.upload",
  "M.UPLOAD_FILE",
  "org.matrix.msc4039.download_file:mxc",
  "m.send.event:m.upload_file",
  "org.matrix.msc4040.download_file"
)

describe("MSC4039 media capabilities vs oracle", () => {
  it("uploadFile / downloadFile are granted exactly by the proposal's names, and approve-all approves those names", () => {
    let granted = 0
    fc.assert(
      fc.property(fc.array(fc.oneof({ arbitrary: mediaName, weight: 3 }, { arbitrary: capString, weight: 1 }), { maxLength: 5 }), (approved) => {
        const p = compilePermissions(approved)
        expect(p.uploadFile).toBe(oracleMedia(approved, "upload"))
        expect(p.downloadFile).toBe(oracleMedia(approved, "download"))
        for (const cap of approved) {
          if (!oracleMedia([cap], "upload") && !oracleMedia([cap], "download")) continue
          expect(classify({ rules: [{ capability: "*", decision: "approve" }] }, { id: "w" }, cap)).toStrictEqual({ _tag: "Approve", rule: 0 })
          granted++
        }
      }),
      { numRuns: RUNS }
    )
    expect(granted).toBeGreaterThan(1000)
  })
})
