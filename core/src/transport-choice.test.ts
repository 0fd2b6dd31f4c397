import * as Result from "./result.ts"
import { assert, describe, it } from "vitest"
import {
  browserHost,
  chooseTransport,
  headlessHost,
  type HostTransports,
  transportsOf,
  unstableTransportName
} from "./transport-choice.ts"
import type { TransportName } from "./widget-definition.ts"

interface ListCase {
  readonly name: string
  readonly content: Readonly<Record<string, unknown>>
  readonly want: ReadonlyArray<TransportName>
}

const listCases: ReadonlyArray<ListCase> = [
  { name: "missing: postMessage", content: {}, want: ["m.postmessage"] },
  { name: "empty array: postMessage", content: { transports: [] }, want: ["m.postmessage"] },
  { name: "string instead of array: postMessage", content: { transports: "m.websockets" }, want: ["m.postmessage"] },
  { name: "object instead of array: postMessage", content: { transports: { 0: "m.websockets" } }, want: ["m.postmessage"] },
  { name: "null: postMessage", content: { transports: null }, want: ["m.postmessage"] },
  { name: "no known transport: postMessage baseline", content: { transports: ["com.example.carrier-pigeon"] }, want: ["m.postmessage"] },
  { name: "only non-strings: postMessage baseline", content: { transports: [1, null, {}] }, want: ["m.postmessage"] },
  { name: "stable names kept in order", content: { transports: ["m.websockets", "m.postmessage"] }, want: ["m.websockets", "m.postmessage"] },
  { name: "websockets only", content: { transports: ["m.websockets"] }, want: ["m.websockets"] },
  { name: "unknown names dropped", content: { transports: ["x.y", "m.websockets", 7] }, want: ["m.websockets"] },
  { name: "duplicates keep first position", content: { transports: ["m.websockets", "m.postmessage", "m.websockets"] }, want: ["m.websockets", "m.postmessage"] },
  {
    name: "unstable field, unstable names normalised",
    content: { "org.matrix.msc3009.transports": ["org.matrix.msc3009.websockets", "org.matrix.msc3009.postmessage"] },
    want: ["m.websockets", "m.postmessage"]
  },
  { name: "unstable field, stable names", content: { "org.matrix.msc3009.transports": ["m.websockets"] }, want: ["m.websockets"] },
  { name: "stable field, unstable names", content: { transports: ["org.matrix.msc3009.websockets"] }, want: ["m.websockets"] },
  { name: "mixed spellings deduplicated", content: { transports: ["org.matrix.msc3009.websockets", "m.websockets"] }, want: ["m.websockets"] },
  {
    name: "stable field wins over unstable",
    content: { transports: ["m.postmessage"], "org.matrix.msc3009.transports": ["org.matrix.msc3009.websockets"] },
    want: ["m.postmessage"]
  },
  {
    name: "empty stable field falls back to unstable",
    content: { transports: [], "org.matrix.msc3009.transports": ["org.matrix.msc3009.websockets"] },
    want: ["m.websockets"]
  },
  {
    name: "wrong-typed stable field falls back to unstable",
    content: { transports: "m.postmessage", "org.matrix.msc3009.transports": ["m.websockets"] },
    want: ["m.websockets"]
  },
  { name: "wrong-typed unstable field: postMessage", content: { "org.matrix.msc3009.transports": "org.matrix.msc3009.websockets" }, want: ["m.postmessage"] },
  { name: "names are case-sensitive", content: { transports: ["M.WEBSOCKETS"] }, want: ["m.postmessage"] }
]

describe("transportsOf (MSC3009 rules 1 and 2)", () => {
  it.each(listCases)("$name", ({ content, want }) => assert.deepEqual(transportsOf(content), want))
})

interface ChoiceCase {
  readonly name: string
  readonly transports: ReadonlyArray<TransportName>
  readonly waitForIframeLoad: boolean
  readonly host: HostTransports
  readonly want: { readonly transport: TransportName; readonly waitForIframeLoad: boolean } | "none"
}

const both: HostTransports = { supported: ["m.postmessage", "m.websockets"], prefer: ["m.websockets"] }
const postOnly: HostTransports = { supported: ["m.postmessage"], prefer: ["m.postmessage"] }
const noPrefer: HostTransports = { supported: ["m.websockets", "m.postmessage"], prefer: [] }
const preferUnsupported: HostTransports = { supported: ["m.postmessage"], prefer: ["m.websockets"] }

const choiceCases: ReadonlyArray<ChoiceCase> = [
  { name: "browser host, postMessage widget", transports: ["m.postmessage"], waitForIframeLoad: true, host: browserHost, want: { transport: "m.postmessage", waitForIframeLoad: true } },
  { name: "browser host keeps waitForIframeLoad false", transports: ["m.postmessage"], waitForIframeLoad: false, host: browserHost, want: { transport: "m.postmessage", waitForIframeLoad: false } },
  { name: "browser host prefers postMessage when both offered", transports: ["m.websockets", "m.postmessage"], waitForIframeLoad: true, host: browserHost, want: { transport: "m.postmessage", waitForIframeLoad: true } },
  { name: "browser host serves a websockets-only widget over websockets", transports: ["m.websockets"], waitForIframeLoad: true, host: browserHost, want: { transport: "m.websockets", waitForIframeLoad: false } },
  { name: "websockets forces waitForIframeLoad false (rule 4)", transports: ["m.postmessage", "m.websockets"], waitForIframeLoad: true, host: both, want: { transport: "m.websockets", waitForIframeLoad: false } },
  { name: "headless host, websockets offered", transports: ["m.postmessage", "m.websockets"], waitForIframeLoad: true, host: headlessHost, want: { transport: "m.websockets", waitForIframeLoad: false } },
  { name: "headless host, postMessage-only widget: no common transport", transports: ["m.postmessage"], waitForIframeLoad: true, host: headlessHost, want: "none" },
  { name: "postMessage-only host, websockets-only widget: postMessage baseline", transports: ["m.websockets"], waitForIframeLoad: true, host: postOnly, want: { transport: "m.postmessage", waitForIframeLoad: true } },
  { name: "no preference: supported order decides", transports: ["m.postmessage", "m.websockets"], waitForIframeLoad: true, host: noPrefer, want: { transport: "m.websockets", waitForIframeLoad: false } },
  { name: "a preferred but unsupported transport is never chosen", transports: ["m.websockets", "m.postmessage"], waitForIframeLoad: true, host: preferUnsupported, want: { transport: "m.postmessage", waitForIframeLoad: true } },
  { name: "an empty list still means postMessage", transports: [], waitForIframeLoad: true, host: both, want: { transport: "m.postmessage", waitForIframeLoad: true } },
  { name: "host supporting nothing: no common transport", transports: ["m.postmessage"], waitForIframeLoad: true, host: { supported: [], prefer: [] }, want: "none" }
]

describe("chooseTransport (MSC3009 rules 3 and 4)", () => {
  it.each(choiceCases)("$name", ({ transports, waitForIframeLoad, host, want }) => {
    const got = chooseTransport({ transports, waitForIframeLoad }, host)
    if (want === "none") {
      assert.isTrue(Result.isFailure(got))
      if (Result.isFailure(got)) {
        assert.equal(got.failure._tag, "NoCommonTransport")
        assert.deepEqual(got.failure.host, host.supported)
      }
    } else {
      assert.deepEqual(Result.isSuccess(got) ? got.success : got.failure, want)
    }
  })

  it("end to end from raw content: unstable names, headless host", () => {
    const got = chooseTransport(
      { transports: transportsOf({ "org.matrix.msc3009.transports": ["org.matrix.msc3009.websockets"] }), waitForIframeLoad: true },
      headlessHost
    )
    assert.deepEqual(Result.isSuccess(got) ? got.success : undefined, { transport: "m.websockets", waitForIframeLoad: false })
  })

  it("unstable spellings for the unstable template variable", () => {
    assert.equal(unstableTransportName("m.postmessage"), "org.matrix.msc3009.postmessage")
    assert.equal(unstableTransportName("m.websockets"), "org.matrix.msc3009.websockets")
  })
})
