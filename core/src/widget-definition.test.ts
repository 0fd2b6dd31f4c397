import * as Result from "./result.ts"
import { assert, describe, it } from "vitest"
import { type InvalidWidget, isRemoval, isSafeWidgetUrl, parseWidgetDefinition, type WidgetDefinition, type WidgetSource } from "./widget-definition.ts"

const roomEvent = (content: unknown, overrides: Partial<{ type: string; state_key: string }> = {}): WidgetSource => ({
  source: "room-state",
  event: { type: "m.widget", state_key: "w1", room_id: "!room:example.org", sender: "@alice:example.org", content, ...overrides }
})

const minimal = { type: "m.custom", url: "https://widget.example/index.html" }

const roomWidget: WidgetDefinition = {
  id: "w1",
  kind: "room",
  roomId: "!room:example.org",
  type: "m.custom",
  url: "https://widget.example/index.html",
  data: {},
  waitForIframeLoad: true,
  transports: ["m.postmessage"]
}

interface Case {
  readonly name: string
  readonly input: WidgetSource
  readonly want: WidgetDefinition | InvalidWidget["reason"]
}

const cases: ReadonlyArray<Case> = [
  // room state
  { name: "m.widget minimal: defaults", input: roomEvent(minimal), want: roomWidget },
  { name: "im.vector.modular.widgets is accepted", input: roomEvent(minimal, { type: "im.vector.modular.widgets" }), want: roomWidget },
  { name: "other state event type", input: roomEvent(minimal, { type: "m.room.topic" }), want: "WrongEventType" },
  {
    name: "every field",
    input: roomEvent({
      ...minimal,
      id: "ignored-in-favour-of-state-key",
      name: "Debugger",
      data: { title: "Widget testing", n: 1 },
      creatorUserId: "@travis:localhost",
      waitForIframeLoad: false,
      transports: ["m.postmessage", "m.websockets"]
    }),
    want: {
      ...roomWidget,
      name: "Debugger",
      data: { title: "Widget testing", n: 1 },
      creatorUserId: "@travis:localhost",
      waitForIframeLoad: false,
      transports: ["m.postmessage", "m.websockets"]
    }
  },
  { name: "state_key is the id", input: roomEvent(minimal, { state_key: "other" }), want: { ...roomWidget, id: "other" } },
  { name: "empty state_key", input: roomEvent(minimal, { state_key: "" }), want: "MissingId" },
  { name: "empty content: removed", input: roomEvent({}), want: "Removed" },
  { name: "null content: removed", input: roomEvent(null), want: "Removed" },
  { name: "content without url: removed (MSC2764)", input: roomEvent({ type: "m.custom" }), want: "Removed" },
  { name: "content without type: removed (MSC2764)", input: roomEvent({ url: "https://w.example/" }), want: "Removed" },
  { name: "non-string type", input: roomEvent({ type: 5, url: "https://w.example/" }), want: "MissingType" },
  { name: "non-string url", input: roomEvent({ type: "m.custom", url: 5 }), want: "MissingUrl" },
  { name: "empty url", input: roomEvent({ type: "m.custom", url: "" }), want: "MissingUrl" },
  { name: "javascript: url", input: roomEvent({ type: "m.custom", url: "javascript:alert(1)" }), want: "UnsafeUrl" },
  { name: "data: url", input: roomEvent({ type: "m.custom", url: "data:text/html,hi" }), want: "UnsafeUrl" },
  { name: "template variable as scheme", input: roomEvent({ type: "m.custom", url: "$scheme://w.example/" }), want: "UnsafeUrl" },
  { name: "relative url", input: roomEvent({ type: "m.custom", url: "/widget" }), want: "UnsafeUrl" },
  { name: "http url is accepted", input: roomEvent({ type: "m.custom", url: "http://localhost:8082#?w=$matrix_widget_id" }), want: { ...roomWidget, url: "http://localhost:8082#?w=$matrix_widget_id" } },
  { name: "data of the wrong type: {}", input: roomEvent({ ...minimal, data: ["x"] }), want: roomWidget },
  { name: "waitForIframeLoad of the wrong type: true", input: roomEvent({ ...minimal, waitForIframeLoad: "false" }), want: roomWidget },
  { name: "name and creatorUserId of the wrong type: dropped", input: roomEvent({ ...minimal, name: 1, creatorUserId: {} }), want: roomWidget },
  {
    name: "unstable transports normalised",
    input: roomEvent({ ...minimal, "org.matrix.msc3009.transports": ["org.matrix.msc3009.websockets"] }),
    want: { ...roomWidget, transports: ["m.websockets"] }
  },
  { name: "unknown transports: postMessage", input: roomEvent({ ...minimal, transports: ["x.pigeon"] }), want: roomWidget },
  // account data (m.widgets entries)
  {
    name: "m.widgets entry",
    input: { source: "account-data", id: "sticker", content: { type: "m.widget", state_key: "sticker", sender: "@a:x", content: { ...minimal, type: "m.stickerpicker" } } },
    want: { id: "sticker", kind: "account", type: "m.stickerpicker", url: minimal.url, data: {}, waitForIframeLoad: true, transports: ["m.postmessage"] }
  },
  {
    name: "m.widgets entry: id from state_key",
    input: { source: "account-data", content: { type: "m.widget", state_key: "sk", sender: "@a:x", content: minimal } },
    want: { id: "sk", kind: "account", type: "m.custom", url: minimal.url, data: {}, waitForIframeLoad: true, transports: ["m.postmessage"] }
  },
  {
    name: "m.widgets entry pinned to a room",
    input: { source: "account-data", id: "a", roomId: "!r:x", content: { type: "m.widget", state_key: "a", sender: "@a:x", content: minimal } },
    want: { id: "a", kind: "room", roomId: "!r:x", type: "m.custom", url: minimal.url, data: {}, waitForIframeLoad: true, transports: ["m.postmessage"] }
  },
  { name: "m.widgets entry without content", input: { source: "account-data", id: "a", content: { type: "m.widget", state_key: "a" } }, want: "NotAnObject" },
  { name: "m.widgets entry that is not an object", input: { source: "account-data", id: "a", content: "nope" }, want: "NotAnObject" },
  { name: "m.widgets entry without any id", input: { source: "account-data", content: { content: minimal } }, want: "MissingId" },
  { name: "m.widgets entry with a bad url", input: { source: "account-data", id: "a", content: { content: { type: "m.custom", url: "ftp://x/" } } }, want: "UnsafeUrl" },
  // configuration
  {
    name: "config with id in content",
    input: { source: "config", content: { ...minimal, id: "cfg", transports: ["m.websockets"] } },
    want: { id: "cfg", kind: "account", type: "m.custom", url: minimal.url, data: {}, waitForIframeLoad: true, transports: ["m.websockets"] }
  },
  {
    name: "config: caller's id wins",
    input: { source: "config", id: "given", roomId: "!r:x", content: { ...minimal, id: "cfg" } },
    want: { id: "given", kind: "room", roomId: "!r:x", type: "m.custom", url: minimal.url, data: {}, waitForIframeLoad: true, transports: ["m.postmessage"] }
  },
  { name: "config without id", input: { source: "config", content: minimal }, want: "MissingId" },
  { name: "config without url", input: { source: "config", id: "c", content: { type: "m.custom" } }, want: "MissingUrl" },
  { name: "config without type", input: { source: "config", id: "c", content: { url: minimal.url } }, want: "MissingType" },
  { name: "config that is an array", input: { source: "config", id: "c", content: [minimal] }, want: "NotAnObject" }
]

describe("parseWidgetDefinition", () => {
  it.each(cases)("$name", ({ input, want }) => {
    const got = parseWidgetDefinition(input)
    if (typeof want === "string") {
      assert.isTrue(Result.isFailure(got), "expected a failure")
      if (Result.isFailure(got)) {
        assert.equal(got.failure._tag, "InvalidWidget")
        assert.equal(got.failure.reason, want)
        assert.equal(isRemoval(got.failure), want === "Removed")
        assert.isNotEmpty(got.failure.detail)
      }
    } else {
      assert.deepEqual(Result.isSuccess(got) ? got.success : got.failure, want)
    }
  })
})

describe("isSafeWidgetUrl", () => {
  it.each([
    ["https://w.example/", true],
    ["HTTP://W.EXAMPLE/", true],
    ["https://$domain/x", true],
    ["javascript:alert(1)", false],
    ["$matrix_scheme://x", false],
    ["https://exa mple.com", false],
    ["", false]
  ] as const)("%s → %s", (url, want) => assert.equal(isSafeWidgetUrl(url), want))
})
