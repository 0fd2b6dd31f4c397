/**
 * The demo widgets' pages, served by the widget listener itself (`/demo/chat.html`,
 * `/demo/call.html`), so `npm start` needs nothing else to show a widget in a browser. Their code
 * (chat-widget.ts, call-widget.ts, on the widget kit) is bundled by esbuild once at start, in
 * memory; nothing is written or downloaded.
 *
 * Each page has a strict CSP: scripts and styles only from this origin (no inline code, so
 * nothing injected into the page runs), and connections only to this listener's websocket
 * origin, so a link whose `#ws=` names another server cannot make the page talk to it. Widget
 * text reaches the DOM as `textContent` only (demo-widget-page.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { fileURLToPath } from "node:url"

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #5f6b7a; --line: #d0d7de; --accent: #0b62d6; --bad: #c62828; --ok: #2e7d32; --wait: #b35900; font: 14px/1.4 system-ui, sans-serif }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #8b949e; --line: #30363d; --accent: #4c8df6; --ok: #3fb950 } }
* { box-sizing: border-box }
body { margin: 0; background: var(--bg); color: var(--fg); display: flex; flex-direction: column; min-height: 100vh }
header { display: flex; flex-wrap: wrap; gap: .3em 1em; align-items: baseline; padding: .6em 1em; border-bottom: 1px solid var(--line) }
header h1 { font-size: 1.1em; margin: 0 }
#status.ok { color: var(--ok) } #status.bad { color: var(--bad) } #status.wait { color: var(--wait) }
main { flex: 1; display: grid; gap: 1em; padding: 1em; grid-template-columns: minmax(0, 2fr) minmax(0, 1fr); align-content: start }
section { min-width: 0 }
h2 { font-size: 1em; margin: 0 0 .4em }
ul { list-style: none; margin: 0; padding: 0 }
#messages { max-height: 60vh; overflow: auto; border: 1px solid var(--line); border-radius: 6px }
#messages li, #received li, #sent li { display: grid; grid-template-columns: auto minmax(0, 12em) minmax(0, 1fr); gap: .6em; padding: .3em .6em; border-bottom: 1px solid var(--line) }
#received li, #sent li { grid-template-columns: minmax(0, 12em) minmax(0, 1fr) }
#messages li.empty { display: block; color: var(--muted) }
.sender { color: var(--accent); overflow: hidden; text-overflow: ellipsis; white-space: nowrap }
.body, .mono, code { overflow-wrap: anywhere }
.time, .muted { color: var(--muted) }
.mono, code, #capabilities li { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace }
#capabilities li { border: 1px solid var(--line); border-radius: 3px; padding: .1em .4em; margin-bottom: .3em; overflow-wrap: anywhere }
#capabilities li.denied { text-decoration: line-through; color: var(--muted) }
form { display: flex; flex-wrap: wrap; gap: .5em; margin-top: .6em }
input { font: inherit; flex: 1 1 10em; min-width: 0; padding: .3em .5em }
button { font: inherit; padding: .3em 1em; background: var(--accent); color: #fff; border: 1px solid var(--accent); border-radius: 4px; cursor: pointer }
button:disabled { opacity: .5; cursor: default }
@media (max-width: 700px) { main { grid-template-columns: minmax(0, 1fr) } }
`

const page = (title: string, script: string, body: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/demo/demo.css">
</head>
<body>
${body}
<script src="/demo/${script}"></script>
</body>
</html>
`

const CHAT_HTML = page(
  "widgethost demo chat",
  "chat.js",
  `<header><h1>Demo chat</h1><span id="room" class="muted mono"></span><span id="status" class="wait">loading…</span></header>
<main>
<section aria-labelledby="h-messages"><h2 id="h-messages">Messages</h2><ul id="messages"><li class="empty">Loading…</li></ul>
<form id="compose"><input id="text" autocomplete="off" maxlength="4000" aria-label="Message" disabled><button id="send" type="submit" disabled>Send</button></form></section>
<section aria-labelledby="h-caps"><h2 id="h-caps">Capabilities</h2><ul id="capabilities"></ul></section>
</main>`
)

const CALL_HTML = page(
  "widgethost demo call",
  "call.js",
  `<header><h1>Demo call</h1><span id="status" class="wait">loading…</span></header>
<main>
<section aria-labelledby="h-turn"><h2 id="h-turn">TURN servers</h2><div id="turn" class="muted">Not watching yet.</div>
<h2>To-device messages (io.widgethost.demo.ping)</h2>
<form id="ping"><input id="target" aria-label="User id" placeholder="@user:localhost"><input id="device" aria-label="Device id" placeholder="device id, or * for all"><input id="text" aria-label="Text" value="ping"><button id="send" type="submit" disabled>Send</button></form>
<h2>Received</h2><ul id="received"></ul><h2>Sent</h2><ul id="sent"></ul></section>
<section aria-labelledby="h-caps"><h2 id="h-caps">Capabilities</h2><ul id="capabilities"></ul></section>
</main>`
)

export interface DemoPages {
  /** The handler for the widget listener's plain HTTP requests (`onHttpRequest`). */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void
}

/** Bundles the two widgets (esbuild, in memory). Running from the TypeScript sources, the bundle is built from them too. */
const bundleWidgets = async (): Promise<{ readonly chat: string; readonly call: string }> => {
  const { build } = await import("esbuild")
  const fromSource = import.meta.url.endsWith(".ts")
  const entry = (name: string) => fileURLToPath(new URL(`./${name}${fromSource ? ".ts" : ".js"}`, import.meta.url))
  const result = await build({
    entryPoints: { chat: entry("chat-widget"), call: entry("call-widget") },
    bundle: true,
    write: false,
    outdir: "/demo",
    format: "iife",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    logLevel: "silent",
    ...(fromSource ? { conditions: ["@widgethost/source"] } : {})
  })
  const text = (name: string) => {
    const file = result.outputFiles.find((f) => f.path.endsWith(`/${name}.js`))
    if (file === undefined) throw new Error(`esbuild produced no ${name}.js`)
    return file.text
  }
  return { chat: text("chat"), call: text("call") }
}

/**
 * Bundles the widgets and returns the pages' request handler. `websocketOrigin` is read per
 * request (the listener's port is known only once it listens).
 *
 * @example const pages = await startDemoPages(() => transport.url)
 */
export const startDemoPages = async (websocketOrigin: () => string): Promise<DemoPages> => {
  const scripts = await bundleWidgets()
  const files: Readonly<Record<string, { readonly type: string; readonly body: string }>> = {
    "/demo/chat.html": { type: "text/html; charset=utf-8", body: CHAT_HTML },
    "/demo/call.html": { type: "text/html; charset=utf-8", body: CALL_HTML },
    "/demo/chat.js": { type: "text/javascript; charset=utf-8", body: scripts.chat },
    "/demo/call.js": { type: "text/javascript; charset=utf-8", body: scripts.call },
    "/demo/demo.css": { type: "text/css; charset=utf-8", body: STYLE }
  }
  const csp = () =>
    ["default-src 'none'", "script-src 'self'", "style-src 'self'", `connect-src ${websocketOrigin()}`, "img-src data:", "base-uri 'none'", "form-action 'none'"].join("; ")
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    const path = new URL(req.url ?? "/", "http://demo.invalid").pathname
    const file = files[path]
    const common = { "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer" }
    if (file === undefined) return void res.writeHead(404, { ...common, "Content-Type": "text/plain; charset=utf-8" }).end("not found: the demo widgets are /demo/chat.html and /demo/call.html\n")
    if (req.method !== "GET" && req.method !== "HEAD") return void res.writeHead(405, { ...common, Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" }).end("GET only\n")
    res.writeHead(200, { ...common, "Content-Type": file.type, "Content-Length": Buffer.byteLength(file.body), "Content-Security-Policy": csp() })
    res.end(req.method === "HEAD" ? undefined : file.body)
  }
  return { handle }
}
