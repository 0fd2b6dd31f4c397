/**
 * The packages as an adopter gets them: build every package, `npm pack` it, install the tarballs
 * into an empty app (offline: third-party dependencies come from this checkout's node_modules),
 * then compile the README's example there with plain `tsc` (no TypeScript-source imports) and run
 * it with plain Node 20, and bundle the browser entry for Chromium, where it must pull in nothing
 * of Node and host a widget: on the in-memory homeserver, and as a browser app whose own
 * matrix-js-sdk client (with its WebAssembly crypto) hosts the widget on the embedded homeserver.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { gzipSync } from "node:zlib"
import { build } from "esbuild"
import { chromium } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { serveStaticFiles } from "../src/static-files.ts"

const root = join(import.meta.dirname, "..", "..")
const publishable = ["core", "machines", "adapters/post-message", "adapters/websocket", "adapters/widget-client", "adapters/homeserver-client", "adapters/matrix-js-sdk", "adapters/client-widget-api", "adapters/embedded-homeserver", "adapters/simulator", "adapters/service", "test/kit"]
const run = (command: string, args: ReadonlyArray<string>, cwd: string) => execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
const manifest = (dir: string) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name: string; dependencies?: Record<string, string>; peerDependencies?: Record<string, string> }

interface Packed {
  readonly name: string
  readonly tarball: string
  readonly files: ReadonlyArray<string>
}

let work: string
let app: string
const packed: Array<Packed> = []

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "widgethost-packages-"))
  app = join(work, "app")
  run(join(root, "node_modules", ".bin", "tsc"), ["-b", "tsconfig.build.json"], root)
  // One npm for all the workspaces (an npm start costs more than packing one of them).
  const infos = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work, ...publishable.flatMap((dir) => ["--workspace", dir])], root)) as Array<{ name: string; filename: string; files: Array<{ path: string }> }>
  for (const dir of publishable) {
    const name = manifest(join(root, dir)).name
    const info = infos.find((i) => i.name === name)
    assert.isDefined(info, `npm pack made no tarball of ${name}`)
    packed.push({ name, tarball: join(work, info.filename), files: info.files.map((f) => f.path) })
  }
  // Ours from the tarballs, everybody else's from this checkout (no registry at test time).
  const ours = Object.fromEntries(packed.map((p) => [p.name, `file:${p.tarball}`]))
  const theirs: Record<string, string> = {}
  for (const dir of publishable) {
    const { dependencies, peerDependencies } = manifest(join(root, dir))
    for (const dep of Object.keys({ ...dependencies, ...peerDependencies })) if (!(dep in ours)) theirs[dep] = `file:${join(root, "node_modules", dep)}`
  }
  theirs["@types/node"] = `file:${join(root, "node_modules", "@types", "node")}`
  const dependencies = { ...ours, ...theirs }
  run("mkdir", ["-p", join(app, "src")], work)
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "adopter", private: true, type: "module", dependencies, overrides: dependencies }))
  run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", "--no-package-lock"], app)
  for (const file of ["host-a-widget.ts", "host-with-js-sdk.ts", "browser-entry.ts", "browser-host.ts", "browser-js-sdk-host.ts"]) copyFileSync(join(import.meta.dirname, file), join(app, "src", file))
  // An adopter's ordinary tsconfig: Node's own module resolution, no TypeScript-source imports.
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, outDir: "dist", types: ["node"], lib: ["ES2023", "DOM"] }, include: ["src/host-a-widget.ts"] }))
}, 240_000)

afterAll(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true })
})

describe("the published packages", () => {
  it("carry built JavaScript with declarations, and no sources or tests", () => {
    for (const { name, files } of packed) {
      assert.include(files, "dist/index.js", name)
      assert.include(files, "dist/index.d.ts", name)
      assert.include(files, "package.json", name)
      assert.deepEqual(files.filter((f) => f.includes(".test.") || f.startsWith("src/") || f.endsWith(".tsbuildinfo")), [], name)
    }
  })

  it("compile in an app with plain tsc and host a widget on the embedded homeserver with plain Node", () => {
    run(join(root, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], app)
    const output = run(process.execPath, [join(app, "dist", "host-a-widget.js")], app)
    const result = JSON.parse(output.trim()) as { roomId: string; eventId: string; echoed: boolean }
    assert.match(result.roomId, /^!.+:localhost$/)
    assert.match(result.eventId, /^\$/)
    assert.isTrue(result.echoed)
  }, 120_000)

  it("host a widget on a matrix-js-sdk client's own session, importing nothing of Effect", () => {
    const source = readFileSync(join(app, "src", "host-with-js-sdk.ts"), "utf8")
    assert.notMatch(source, /from "effect"/)
    // The same ordinary tsconfig, but skipLibCheck: matrix-js-sdk 36's declarations need it under NodeNext.
    writeFileSync(join(app, "tsconfig.js-sdk.json"), JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { skipLibCheck: true }, include: ["src/host-with-js-sdk.ts"] }))
    run(join(root, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.js-sdk.json"], app)
    const output = run(process.execPath, [join(app, "dist", "host-with-js-sdk.js")], app)
    // The program's answer is its one JSON line (the SDK's crypto may log around it).
    const result = JSON.parse(output.split("\n").find((line) => line.startsWith('{"roomId"'))!) as { roomId: string; eventId: string; echoed: boolean }
    assert.match(result.roomId, /^!.+:localhost$/)
    assert.match(result.eventId, /^\$/)
    assert.isTrue(result.echoed)
  }, 60_000)

  it("install the widgethost command", () => {
    const out = (() => {
      try {
        return run(join(app, "node_modules", ".bin", "widgethost"), ["simulate", "--accounts", "0"], app)
      } catch (error) {
        return (error as { stderr: string; status: number }).stderr + `exit ${(error as { status: number }).status}`
      }
    })()
    assert.equal(out, "widgethost: --accounts must be an integer from 1 to 100\nexit 2")
  })

  it("bundle for the browser with nothing of Node, and host a widget in Chromium", async () => {
    const entry = await build({ entryPoints: ["src/browser-entry.ts"], absWorkingDir: app, bundle: true, minify: true, write: false, format: "esm", platform: "browser", metafile: true, logLevel: "silent" })
    const inputs = Object.keys(entry.metafile.inputs)
    // Everything but the entry comes from the installed packages, and none of it is Node's.
    assert.deepEqual(inputs.filter((path) => path !== "src/browser-entry.ts" && (path.startsWith("node:") || !path.includes("node_modules/"))), [])
    for (const name of ["core", "engine", "post-message"]) assert.isTrue(inputs.some((path) => path.startsWith(`node_modules/@widgethost/${name}/dist/`)), name)
    const bytes = entry.outputFiles[0]!.contents
    console.log(`browser entry (engine + post-message + core) from the tarballs: ${(bytes.length / 1024).toFixed(1)} KB minified, ${(gzipSync(bytes).length / 1024).toFixed(1)} KB gzipped`)

    const page = await build({ entryPoints: ["src/browser-host.ts"], absWorkingDir: app, bundle: true, write: false, format: "esm", platform: "browser", logLevel: "silent" })
    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] })
    try {
      const tab = await browser.newPage()
      const errors: Array<string> = []
      tab.on("pageerror", (error) => errors.push(error.message))
      await tab.setContent(`<!doctype html><script type="module">${page.outputFiles[0]!.text.replaceAll("</script", "<\\/script")}</script>`)
      await tab.waitForFunction(() => (globalThis as { __result?: { echoed: boolean } }).__result?.echoed === true, undefined, { timeout: 10_000 })
      const result = await tab.evaluate(() => (globalThis as { __result?: { sent?: string } }).__result)
      assert.match(result?.sent ?? "", /^\$/)
      assert.deepEqual(errors, [])
    } finally {
      await browser.close()
    }
  }, 60_000)

  it("host a widget in Chromium on a matrix-js-sdk client's own session and crypto, in an encrypted room on the embedded homeserver", async () => {
    const homeserver = await startEmbeddedHomeserver({ registration: "open" })
    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] })
    let files: { url: string; close(): Promise<void> } | undefined
    try {
      const alice = await homeserver.ensureUser("alice", "correct horse battery staple")
      const created = await fetch(`${homeserver.baseUrl}/_matrix/client/v3/createRoom`, { method: "POST", headers: { authorization: `Bearer ${alice.accessToken}`, "content-type": "application/json" }, body: JSON.stringify({ name: "Widgets", initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }] }) })
      const { room_id: roomId } = (await created.json()) as { room_id: string }
      // Bundled from the installed tarballs, as an adopter's bundler would (matrix-js-sdk wants these two defines).
      const page = await build({ entryPoints: ["src/browser-js-sdk-host.ts"], absWorkingDir: app, bundle: true, minify: true, write: false, format: "esm", platform: "browser", target: "es2022", metafile: true, define: { "process.env.NODE_ENV": '"production"', global: "globalThis" }, logLevel: "silent" })
      const inputs = Object.keys(page.metafile.inputs)
      assert.deepEqual(inputs.filter((path) => path.startsWith("node:") || (path !== "src/browser-js-sdk-host.ts" && !path.includes("node_modules/"))), [])
      assert.isTrue(inputs.some((path) => path.startsWith("node_modules/@widgethost/matrix-js-sdk/dist/")))
      const www = join(work, "www")
      run("mkdir", ["-p", www], work)
      const config = { baseUrl: homeserver.baseUrl, userId: alice.userId, accessToken: alice.accessToken, deviceId: alice.deviceId, roomId }
      writeFileSync(join(www, "index.html"), `<!doctype html><meta charset="utf-8"><script>window.__config = ${JSON.stringify(config)}</script><script type="module" src="app.js"></script>`)
      writeFileSync(join(www, "app.js"), page.outputFiles[0]!.contents)
      // The crypto fetches its WebAssembly next to the script (`new URL("./pkg/…", import.meta.url)`), as an adopter
      // deploys it: the .wasm of the very bindings bundled (matrix-js-sdk 36 has its own, older, crypto-wasm).
      const bindings = inputs.find((path) => path.endsWith("matrix-sdk-crypto-wasm/pkg/matrix_sdk_crypto_wasm_bg.js"))!
      run("mkdir", ["-p", join(www, "pkg")], work)
      copyFileSync(join(app, dirname(bindings), "matrix_sdk_crypto_wasm_bg.wasm"), join(www, "pkg", "matrix_sdk_crypto_wasm_bg.wasm"))
      files = await serveStaticFiles(www)
      const tab = await browser.newPage()
      const errors: Array<string> = []
      tab.on("pageerror", (error) => errors.push(error.message))
      await tab.goto(`${files.url}/index.html`)
      await tab.waitForFunction(() => (globalThis as { __result?: { echoed: boolean; error?: string } }).__result?.echoed === true || (globalThis as { __result?: { error?: string } }).__result?.error !== undefined, undefined, { timeout: 20_000 })
      const result = await tab.evaluate(() => (globalThis as { __result?: { sent?: string; echoed: boolean; echoedBody?: string; error?: string } }).__result)
      // Back to the widget decrypted, by the page's own crypto.
      assert.deepEqual({ error: result?.error, echoed: result?.echoed, body: result?.echoedBody }, { error: undefined, echoed: true, body: "hello from a browser" })
      // The homeserver holds it encrypted, sent as alice's device by the page's own client.
      const fetched = await fetch(`${homeserver.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(result!.sent!)}`, { headers: { authorization: `Bearer ${alice.accessToken}` } })
      const event = (await fetched.json()) as { sender: string; type: string; content: { algorithm?: string; device_id?: string } }
      assert.deepEqual({ sender: event.sender, type: event.type, algorithm: event.content.algorithm }, { sender: alice.userId, type: "m.room.encrypted", algorithm: "m.megolm.v1.aes-sha2" })
      assert.deepEqual(errors, [])
    } finally {
      await browser.close()
      await files?.close()
      await homeserver.close()
    }
  }, 60_000)
})
