import { mkdtemp, readFile, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, assert, describe, it } from "vitest"
import { writeFileDurably } from "./durable-file.ts"

const roots: Array<string> = []
afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true })
})
const root = async () => {
  const r = await mkdtemp(join(tmpdir(), "widgethost-durable-"))
  roots.push(r)
  return r
}

describe("writeFileDurably", () => {
  it("makes the missing directories on the first write, then overwrites in place; no temp file left", async () => {
    const dir = join(await root(), "a", "b")
    const file = join(dir, "state.json")
    await writeFileDurably(file, "one")
    assert.equal(await readFile(file, "utf8"), "one")
    await writeFileDurably(file, "two")
    assert.equal(await readFile(file, "utf8"), "two")
    assert.deepEqual(await readdir(dir), ["state.json"])
  })

  it("fails as the open failed when the cause is not a missing directory", async () => {
    const r = await root()
    await writeFileDurably(join(r, "file"), "x")
    // A path under a regular file: ENOTDIR, not made into a directory.
    let code: unknown
    await writeFileDurably(join(r, "file", "inner"), "y").catch((e: NodeJS.ErrnoException) => (code = e.code))
    assert.equal(code, "ENOTDIR")
  })
})
