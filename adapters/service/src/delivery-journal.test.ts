import { spawn } from "node:child_process"
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, assert, describe, it } from "vitest"
import { DeliveryJournal } from "./delivery-journal.ts"

const dirs: Array<string> = []
const journals: Array<DeliveryJournal> = []
afterEach(async () => {
  for (const journal of journals.splice(0)) await journal.close()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const tempFile = () => {
  const dir = mkdtempSync(join(tmpdir(), "widgethost-journal-"))
  dirs.push(dir)
  return join(dir, "deliveries.jsonl")
}

const open = (file: string, options: Parameters<typeof DeliveryJournal.open>[1] = {}) => {
  const journal = DeliveryJournal.open(file, options)
  journals.push(journal)
  return journal
}

const demo = { id: "demo", roomId: "!a:hs" }
const account = { id: "clock" }

describe("delivery journal", () => {
  it("keeps a position per widget and room across a reopen; earlier events are known, other widgets' are not", async () => {
    const file = tempFile()
    const first = open(file)
    first.record(demo, "!a:hs", "$1")
    first.record(demo, "!a:hs", "$2")
    first.record(demo, "!b:hs", "$x")
    first.record(account, "!a:hs", "$9")
    await first.close()
    const again = open(file)
    assert.equal(again.position(demo, "!a:hs"), "$2")
    assert.equal(again.position(demo, "!b:hs"), "$x")
    assert.equal(again.position(account, "!a:hs"), "$9")
    assert.equal(again.position({ id: "demo" }, "!a:hs"), undefined, "an account widget of the same id is another widget")
    assert.isTrue(again.has(demo, "!a:hs", "$1"))
    assert.isFalse(again.has(demo, "!a:hs", "$9"))
    assert.isFalse(again.has(demo, "!c:hs", "$1"))
  })

  it("a record is in the file when record() returns, before any fsync: a SIGKILLed writer loses nothing it recorded", async () => {
    const file = tempFile()
    const journal = open(file, { syncIntervalMs: 60_000 })
    journal.record(demo, "!a:hs", "$1")
    assert.include(readFileSync(file, "utf8"), '"event":"$1"')
    assert.equal(journal.stats().syncs, 0)

    // A real process, killed with SIGKILL right after it says it recorded: nothing was fsync'd.
    const script = `
      import { DeliveryJournal } from ${JSON.stringify(join(import.meta.dirname, "delivery-journal.ts"))}
      const journal = DeliveryJournal.open(${JSON.stringify(file)}, { syncIntervalMs: 60_000 })
      for (let n = 2; n <= 500; n++) journal.record({ id: "demo", roomId: "!a:hs" }, "!a:hs", "$" + n)
      process.stdout.write("recorded " + journal.stats().syncs + "\\n")
      setInterval(() => {}, 1000)
    `
    await journal.close()
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] })
    const said = await new Promise<string>((resolve) => child.stdout.once("data", (chunk: Buffer) => resolve(chunk.toString())))
    child.kill("SIGKILL")
    await new Promise((resolve) => child.once("exit", resolve))
    assert.equal(said.trim(), "recorded 0")
    const reopened = open(file)
    assert.equal(reopened.position(demo, "!a:hs"), "$500")
    assert.isTrue(reopened.has(demo, "!a:hs", "$1"))
  }, 30_000)

  it("fsyncs in batches: many records, one sync per interval; close syncs the rest", async () => {
    const file = tempFile()
    const journal = open(file, { syncIntervalMs: 20 })
    for (let n = 0; n < 200; n++) journal.record(demo, "!a:hs", `$${n}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(journal.stats().syncs, 1)
    journal.record(demo, "!a:hs", "$last")
    await journal.close()
    assert.equal(journal.stats().syncs, 2)
  })

  it("skips a torn last line and keeps the rest", async () => {
    const file = tempFile()
    const first = open(file)
    first.record(demo, "!a:hs", "$1")
    await first.close()
    appendFileSync(file, '{"widget":"demo","widgetRoom":"!a:hs","room":"!a:hs","ev')
    const again = open(file)
    assert.equal(again.position(demo, "!a:hs"), "$1")
    assert.equal(again.stats().skipped, 1)
  })

  it("remembers the last `keep` events per widget and room, and compacts the file to them", async () => {
    const file = tempFile()
    const journal = open(file, { keep: 10, compactBytes: 4096 })
    for (let n = 0; n < 1000; n++) journal.record(demo, "!a:hs", `$${n}`)
    assert.isAbove(journal.stats().compactions, 1)
    assert.isBelow(statSync(file).size, 4096 + 200)
    assert.isFalse(journal.has(demo, "!a:hs", "$989"))
    assert.isTrue(journal.has(demo, "!a:hs", "$990"))
    await journal.close()
    const again = open(file, { keep: 10 })
    assert.equal(again.position(demo, "!a:hs"), "$999")
    assert.isTrue(again.has(demo, "!a:hs", "$990"))
    assert.isFalse(again.has(demo, "!a:hs", "$980"))
  })

  it("a record naming an older event makes it the position again", async () => {
    const file = tempFile()
    const journal = open(file)
    journal.record(demo, "!a:hs", "$1")
    journal.record(demo, "!a:hs", "$2")
    journal.record(demo, "!a:hs", "$1")
    assert.equal(journal.position(demo, "!a:hs"), "$1")
    await journal.close()
    assert.equal(open(file).position(demo, "!a:hs"), "$1")
  })
})
