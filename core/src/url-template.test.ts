import { assert, describe, it } from "vitest"
import { renderWidgetUrl, type TemplateVariables } from "./url-template.ts"

const full: TemplateVariables = {
  widgetId: "w/1",
  userId: "@alice:example.org",
  roomId: "!room:example.org",
  displayName: "Alice & Bob",
  avatarUrl: "https://hs.example/_matrix/media/v3/download/hs.example/abc",
  clientId: "io.element.web",
  clientTheme: "org.example dark",
  clientLanguage: "zh_Hant",
  deviceId: "DEVICE+1",
  transport: "m.websockets",
  websocketUri: "ws://127.0.0.1:1234/widget/tok",
  baseUrl: "https://hs.example",
  data: { title: "a b", answer: 42 }
}

const enc = encodeURIComponent

const variableCases: ReadonlyArray<readonly [string, string]> = [
  ["$matrix_widget_id", enc("w/1")],
  ["$org.matrix.msc2774_widget_id", enc("w/1")],
  ["$matrix_room_id", enc("!room:example.org")],
  ["$matrix_user_id", enc("@alice:example.org")],
  ["$matrix_display_name", enc("Alice & Bob")],
  ["$matrix_avatar_url", enc("https://hs.example/_matrix/media/v3/download/hs.example/abc")],
  ["$matrix_client_id", "io.element.web"],
  ["$org.matrix.msc2873.client_id", "io.element.web"],
  ["$matrix_client_theme", enc("org.example dark")],
  ["$org.matrix.msc2873.client_theme", enc("org.example dark")],
  ["$matrix_client_language", "zh_Hant"],
  ["$org.matrix.msc2873.client_language", "zh_Hant"],
  ["$matrix_device_id", enc("DEVICE+1")],
  ["$org.matrix.msc3819.matrix_device_id", enc("DEVICE+1")],
  ["$matrix_widget_transport", "m.websockets"],
  ["$org.matrix.msc3009.widget_transport", "org.matrix.msc3009.websockets"],
  ["$matrix_websocket_uri", enc("ws://127.0.0.1:1234/widget/tok")],
  ["$org.matrix.msc3009.websocket_uri", enc("ws://127.0.0.1:1234/widget/tok")],
  ["$org.matrix.msc4039.matrix_base_url", enc("https://hs.example")],
  ["$title", "a%20b"],
  ["$answer", "42"]
]

describe("renderWidgetUrl: every variable", () => {
  it.each(variableCases)("%s → %s", (variable, want) => {
    assert.equal(renderWidgetUrl(`https://w.example/?v=${variable}`, full), `https://w.example/?v=${want}`)
  })
})

interface Case {
  readonly name: string
  readonly template: string
  readonly vars: TemplateVariables
  readonly want: string
}

const base: TemplateVariables = { widgetId: "w", userId: "@a:x" }

const cases: ReadonlyArray<Case> = [
  { name: "MSC2764 example", template: "https://example.com?var1=$hello&answer=$answer", vars: { ...base, data: { hello: "world", answer: 42 } }, want: "https://example.com?var1=world&answer=42" },
  { name: "values are encoded (test:value)", template: "https://e/?v=$v", vars: { ...base, data: { v: "test:value" } }, want: "https://e/?v=test%3Avalue" },
  { name: "encoding cannot break out of the component", template: "https://e/?v=$v&x=1", vars: { ...base, data: { v: "a&x=2#frag" } }, want: "https://e/?v=a%26x%3D2%23frag&x=1" },
  { name: "non-ASCII is encoded", template: "https://e/?v=$v", vars: { ...base, data: { v: "é✓" } }, want: `https://e/?v=${enc("é✓")}` },
  { name: "unknown variables stay as they are", template: "https://e/?a=$nope&b=$matrix_nope&c=$", vars: base, want: "https://e/?a=$nope&b=$matrix_nope&c=$" },
  { name: "a variable may appear anywhere, many times", template: "https://e/$matrix_widget_id/x#$matrix_widget_id", vars: base, want: "https://e/w/x#w" },
  { name: "longest name first: a data key extending a host variable", template: "https://e/?a=$matrix_room_id_x&b=$matrix_room_id", vars: { ...base, roomId: "!r:x", data: { matrix_room_id_x: "X" } }, want: "https://e/?a=X&b=!r%3Ax" },
  { name: "longest name first among data keys", template: "https://e/?a=$ab&b=$a&c=$abc", vars: { ...base, data: { a: "1", ab: "2", abc: "3" } }, want: "https://e/?a=2&b=1&c=3" },
  { name: "an undelimited suffix after a host variable (documented)", template: "https://e/?a=$matrix_room_id_x", vars: { ...base, roomId: "!r:x" }, want: "https://e/?a=!r%3Ax_x" },
  { name: "host variables take priority over data (MSC2764)", template: "https://e/?u=$matrix_user_id&w=$matrix_widget_id", vars: { ...base, data: { matrix_user_id: "@evil:x", matrix_widget_id: "other" } }, want: "https://e/?u=%40a%3Ax&w=w" },
  { name: "no nested expansion: a value that looks like a variable", template: "https://e/?v=$hello", vars: { ...base, data: { hello: "$answer", answer: 42 } }, want: "https://e/?v=%24answer" },
  { name: "no nested expansion: data cannot inject a host variable", template: "https://e/?v=$x", vars: { ...base, data: { x: "$matrix_user_id" } }, want: "https://e/?v=%24matrix_user_id" },
  { name: "missing room id is empty (MSC2764)", template: "https://e/?r=$matrix_room_id", vars: base, want: "https://e/?r=" },
  { name: "missing display name falls back to the user id (MSC2764)", template: "https://e/?n=$matrix_display_name", vars: base, want: "https://e/?n=%40a%3Ax" },
  { name: "empty display name falls back to the user id", template: "https://e/?n=$matrix_display_name", vars: { ...base, displayName: "" }, want: "https://e/?n=%40a%3Ax" },
  { name: "missing avatar is empty (MSC2764)", template: "https://e/?a=$matrix_avatar_url", vars: base, want: "https://e/?a=" },
  { name: "missing client variables are empty", template: "https://e/?c=$matrix_client_id&t=$matrix_client_theme&l=$matrix_client_language&d=$matrix_device_id", vars: base, want: "https://e/?c=&t=&l=&d=" },
  { name: "no transport chosen: empty", template: "https://e/?t=$matrix_widget_transport&u=$org.matrix.msc3009.widget_transport", vars: base, want: "https://e/?t=&u=" },
  { name: "postMessage transport", template: "https://e/?t=$matrix_widget_transport&u=$org.matrix.msc3009.widget_transport", vars: { ...base, transport: "m.postmessage" }, want: "https://e/?t=m.postmessage&u=org.matrix.msc3009.postmessage" },
  { name: "websocket URI is empty unless the transport is websockets", template: "https://e/?ws=$matrix_websocket_uri", vars: { ...base, transport: "m.postmessage", websocketUri: "ws://x/" }, want: "https://e/?ws=" },
  { name: "boolean and number data", template: "https://e/?b=$b&n=$n", vars: { ...base, data: { b: false, n: 1.5 } }, want: "https://e/?b=false&n=1.5" },
  { name: "object, array and null data become JSON", template: "https://e/?o=$o&a=$a&z=$z", vars: { ...base, data: { o: { k: 1 }, a: [1], z: null } }, want: `https://e/?o=${enc('{"k":1}')}&a=${enc("[1]")}&z=null` },
  { name: "regex metacharacters in data keys", template: "https://e/?v=$a.b*c&w=$axb", vars: { ...base, data: { "a.b*c": "1" } }, want: "https://e/?v=1&w=$axb" },
  { name: "the MSC3009 example", template: "http://localhost:8082#?widgetId=$matrix_widget_id&transport=$matrix_widget_transport", vars: { ...base, widgetId: "debugger_test", transport: "m.websockets" }, want: "http://localhost:8082#?widgetId=debugger_test&transport=m.websockets" },
  { name: "a template without variables is unchanged", template: "https://e/?a=1", vars: base, want: "https://e/?a=1" }
]

describe("renderWidgetUrl", () => {
  it.each(cases)("$name", ({ template, vars, want }) => assert.equal(renderWidgetUrl(template, vars), want))
})
