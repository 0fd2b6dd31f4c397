/**
 * The capability engine (parse → compile → index) against an oracle written separately and naively:
 * for each question it loops over every approved string, recognises the prefixes by hand and
 * splits the type with regular expressions straight from the MSC2762 rules. No code is shared
 * with `core/src/capabilities.ts`.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { classify, type ClientHook, compilePermissions, noClientSide, RoutingIndex } from "@widgethost/core"
import { KEYS, TYPES, capString, derivedEvents, event, ops, subscriber, type Subscriber } from "../src/capability-arbitraries.ts"
import { oracleMay, oracleMayRead, oracleToDevice, oracleUseRoom } from "../src/capability-oracle.ts"

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
