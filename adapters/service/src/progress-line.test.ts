import { describe, expect, it } from "vitest"
import type { LoadProgress } from "@widgethost/homeserver-client"
import { formatProgress, ProgressLine } from "./progress-line.ts"

const crypto = (step: string, done: number, total: number, finished = false): LoadProgress => ({ task: "crypto-store", step, done, total, unit: "records", finished })
const sync = (step: string, done: number, total: number, finished = false): LoadProgress => ({ task: "first-sync", step, done, total, unit: total === 0 ? "" : "rooms", finished })

describe("formatProgress: given progress and elapsed time, want the line", () => {
  it.each([
    [crypto("restoring records", 0, 4800), 0, "crypto store: restoring records 0/4,800 records   0% [....................] 0 ms"],
    [crypto("restoring records", 1200, 4800), 1234, "crypto store: restoring records 1,200/4,800 records  25% [#####...............] 1.2 s"],
    [crypto("opening the crypto machine", 4800, 4800), 2000, "crypto store: opening the crypto machine 4,800/4,800 records 100% [####################] 2.0 s"],
    [crypto("loaded", 4800, 4800, true), 2500, "crypto store: done, 4,800 records in 2.5 s"],
    [crypto("reading the store", 0, 0), 40, "crypto store: reading the store… 40 ms"],
    [sync("waiting for the homeserver", 0, 0), 61_500, "first sync: waiting for the homeserver… 1 min 2 s"],
    [sync("taking in rooms", 999, 1000), 5000, "first sync: taking in rooms 999/1,000 rooms  99% [####################] 5.0 s"],
    [sync("done", 1000, 1000, true), 5100, "first sync: done, 1,000 rooms in 5.1 s"],
    // more done than total (a count raced ahead) is shown full, never past 100 %
    [sync("taking in rooms", 12, 10), 10, "first sync: taking in rooms 12/10 rooms 100% [####################] 10 ms"]
  ] as const)("%j after %d ms → %s", (progress, elapsed, want) => {
    expect(formatProgress(progress, elapsed)).toBe(want)
  })

  it("never wider than the terminal less one column, cut with an ellipsis", () => {
    const line = formatProgress(crypto("restoring records", 1, 2), 0, 30)
    expect(line).toBe("crypto store: restoring reco…")
    expect(line.length).toBe(29)
  })
})

const recorder = (isTTY: boolean) => {
  const writes: string[] = []
  return { stream: { isTTY, columns: 120, write: (text: string) => void writes.push(text) }, writes }
}

describe("ProgressLine: in place on a terminal, final lines only elsewhere", () => {
  it("on a TTY: rewritten with \\r, redraws of one step at most every intervalMs, a final line with a newline", () => {
    let now = 0
    const { stream, writes } = recorder(true)
    const line = new ProgressLine(stream, { now: () => now, intervalMs: 100 })
    line.update(crypto("restoring records", 0, 1000))
    now = 50
    line.update(crypto("restoring records", 256, 1000)) // too soon: skipped
    now = 120
    line.update(crypto("restoring records", 512, 1000))
    line.update(crypto("opening the crypto machine", 1000, 1000)) // a new step: drawn at once
    now = 300
    line.update(crypto("loaded", 1000, 1000, true))
    expect(writes).toEqual([
      "\rcrypto store: restoring records 0/1,000 records   0% [....................] 0 ms\x1b[K",
      "\rcrypto store: restoring records 512/1,000 records  51% [##########..........] 120 ms\x1b[K",
      "\rcrypto store: opening the crypto machine 1,000/1,000 records 100% [####################] 120 ms\x1b[K",
      "\rcrypto store: done, 1,000 records in 300 ms\x1b[K\n"
    ])
  })

  it("a log line meanwhile clears the line, is written, and the line is drawn again; none after the final line", () => {
    const { stream, writes } = recorder(true)
    const line = new ProgressLine(stream, { now: () => 0 })
    line.update(sync("waiting for the homeserver", 0, 0))
    line.interrupt("log line\n")
    line.update(sync("done", 3, 3, true))
    line.interrupt("after\n")
    expect(writes).toEqual([
      "\rfirst sync: waiting for the homeserver… 0 ms\x1b[K",
      "\r\x1b[Klog line\n\rfirst sync: waiting for the homeserver… 0 ms\x1b[K",
      "\rfirst sync: done, 3 rooms in 0 ms\x1b[K\n",
      "after\n"
    ])
  })

  it("clear() wipes an unfinished line (a failed start), once", () => {
    const { stream, writes } = recorder(true)
    const line = new ProgressLine(stream, { now: () => 0 })
    line.update(crypto("reading the store", 0, 0))
    line.clear()
    line.clear()
    expect(writes.slice(1)).toEqual(["\r\x1b[K"])
  })

  it("a terminal that says width 0 (some ptys) is taken as 80 columns: the line cannot wrap", () => {
    const writes: string[] = []
    const line = new ProgressLine({ isTTY: true, columns: 0, write: (text) => void writes.push(text) }, { now: () => 0 })
    line.update({ task: "first-sync", step: "taking in rooms with a very long description of what is going on", done: 1, total: 2, unit: "rooms", finished: false })
    expect(writes[0]!.replace("\r", "").replace("\x1b[K", "")).toHaveLength(79)
  })

  it("not a TTY: nothing is drawn, no \\r ever; each task's final line goes to `finished`", () => {
    let now = 0
    const { stream, writes } = recorder(false)
    const finals: string[] = []
    const line = new ProgressLine(stream, { now: () => now, finished: (text) => void finals.push(text) })
    line.update(crypto("restoring records", 0, 10))
    now = 1500
    line.update(crypto("loaded", 10, 10, true))
    line.update(sync("waiting for the homeserver", 0, 0))
    now = 1600
    line.update(sync("done", 0, 0, true))
    line.interrupt("a log line\n")
    expect(writes).toEqual(["a log line\n"])
    expect(finals).toEqual(["crypto store: done, 10 records in 1.5 s", "first sync: done in 100 ms"])
  })
})
