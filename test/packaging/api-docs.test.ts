/**
 * The API reference in docs/api is generated from the sources by TypeDoc (`npm run docs`); this
 * test regenerates it into a temporary folder and fails when the committed copy differs, so
 * the reference the README links never drifts from the code. typedoc.json sets skipErrorChecking:
 * tsc type-checks in CI already, and TypeDoc's own full check of every file in tsconfig.json
 * (tests and benches too) took 60% of this test's time (158 s against 64 s on a loaded machine).
 * It also orders union members by the checker's visiting order, so the committed pages are
 * generated with the same setting (`npm run docs`).
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { afterAll, assert, it } from "vitest"

const root = join(import.meta.dirname, "..", "..")
const out = mkdtempSync(join(tmpdir(), "widgethost-api-"))
afterAll(() => rmSync(out, { recursive: true, force: true }))

const files = (dir: string): Map<string, string> => {
  const found = new Map<string, string>()
  const walk = (at: string) => {
    for (const entry of readdirSync(at)) {
      const path = join(at, entry)
      if (statSync(path).isDirectory()) walk(path)
      else found.set(relative(dir, path), readFileSync(path, "utf8"))
    }
  }
  walk(dir)
  return found
}

it("docs/api is what TypeDoc makes of the sources today (else: npm run docs)", () => {
  execFileSync(join(root, "node_modules", ".bin", "typedoc"), ["--out", out], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
  const fresh = files(out)
  const committed = files(join(root, "docs", "api"))
  assert.isAbove(fresh.size, 9, "one page per package at least")
  assert.deepEqual([...committed.keys()].sort(), [...fresh.keys()].sort(), "the same pages")
  const stale = [...fresh].filter(([path, text]) => committed.get(path) !== text).map(([path]) => path)
  assert.deepEqual(stale, [], "pages whose text changed")
}, 120_000)
