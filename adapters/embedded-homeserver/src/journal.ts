import { mkdir, open, readFile, rm, truncate, writeFile } from "node:fs/promises"
import type { FileHandle } from "node:fs/promises"
import { join, resolve } from "node:path"
import type { JournalRecord } from "./records.ts"

/**
 * An append-only JSON-lines file with group commit. `append` resolves only after the bytes are
 * on disk (`datasync`), so the server answers a request only once a `kill -9` (or a power cut,
 * as far as the disk is honest) can no longer lose it. Appends made while a sync is in flight
 * are gathered and written with the next single `datasync`: concurrent requests share one flush
 * instead of queueing one flush each.
 *
 * The first line is a header naming the format and the server name; user and room ids embed the
 * server name, so opening a journal under another name would serve ids the server does not own.
 */
export class Journal {
  private pending: Array<string> = []
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = []
  private flushing: Promise<void> | undefined
  private failure: Error | undefined

  private constructor(
    private readonly file: FileHandle,
    private readonly dir: string
  ) {}

  /**
   * Opens (creating if needed) the journal in `dir` and returns it with every record it holds.
   * A torn last line (a crash mid-append) is cut off the file, since it was never acknowledged;
   * an unreadable line followed by good ones is corruption and refuses to open.
   *
   * @example const { journal, records } = await Journal.open("/var/lib/hs", "localhost")
   */
  static async open(dirPath: string, serverName: string): Promise<{ journal: Journal; records: Array<JournalRecord> }> {
    const dir = resolve(dirPath)
    await mkdir(dir, { recursive: true })
    await lock(dir)
    try {
      return await Journal.load(dir, serverName)
    } catch (e) {
      await unlock(dir)
      throw e
    }
  }

  private static async load(dir: string, serverName: string): Promise<{ journal: Journal; records: Array<JournalRecord> }> {
    const path = join(dir, "journal.jsonl")
    let text = ""
    try {
      text = await readFile(path, "utf8")
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e
    }
    const lastNewline = text.lastIndexOf("\n")
    const complete = text.slice(0, lastNewline + 1)
    if (complete.length !== text.length) await truncate(path, Buffer.byteLength(complete, "utf8"))
    const lines = complete.split("\n").filter((l) => l.length > 0)
    const records: Array<JournalRecord> = []
    lines.forEach((line, i) => {
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch {
        throw new Error(`journal ${path}: line ${i + 1} is not JSON but later lines are; refusing to guess`)
      }
      if (i === 0) {
        const header = value as { format?: unknown; serverName?: unknown }
        if (header.format !== FORMAT) throw new Error(`journal ${path}: not a widgethost homeserver journal`)
        if (header.serverName !== serverName)
          throw new Error(`journal ${path}: written for server name ${String(header.serverName)}, not ${serverName}`)
        return
      }
      records.push(value as JournalRecord)
    })
    const file = await open(path, "a")
    const journal = new Journal(file, dir)
    if (lines.length === 0) {
      await file.appendFile(`${JSON.stringify({ format: FORMAT, version: 1, serverName })}\n`)
      await file.datasync()
      // The new file's directory entry must be durable too, or a crash could forget the file.
      const dirHandle = await open(dir, "r")
      try {
        await dirHandle.sync()
      } finally {
        await dirHandle.close()
      }
    }
    return { journal, records }
  }

  /** Resolves once `records` are durable; rejects if the disk refused (and so will every later append). */
  append(records: ReadonlyArray<JournalRecord>): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure)
    for (const r of records) this.pending.push(`${JSON.stringify(r)}\n`)
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }))
    this.flushing ??= this.flush()
    return done
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const lines = this.pending
      const waiters = this.waiters
      this.pending = []
      this.waiters = []
      try {
        await this.file.appendFile(lines.join(""))
        await this.file.datasync()
        for (const w of waiters) w.resolve()
      } catch (e) {
        // Memory is now ahead of the disk; refusing all later writes keeps the gap from growing.
        this.failure = e instanceof Error ? e : new Error(String(e))
        for (const w of [...waiters, ...this.waiters]) w.reject(this.failure)
        this.waiters = []
        this.pending = []
      }
    }
    this.flushing = undefined
  }

  /** Waits for in-flight appends, then closes the file and releases the directory. */
  async close(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing
    await this.file.close()
    await unlock(this.dir)
  }
}

/**
 * One writer per directory: two servers appending to one journal would interleave two
 * histories with clashing stream positions. A `journal.lock` file names the owning process; a
 * lock left by a dead process (a crash, `kill -9`) is taken over.
 */
const openInThisProcess = new Set<string>()

const lock = async (dir: string): Promise<void> => {
  if (openInThisProcess.has(dir)) throw new Error(`journal ${dir} is already open in this process`)
  const path = join(dir, "journal.lock")
  try {
    const owner = Number((await readFile(path, "utf8")).trim())
    if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) throw new Error(`journal ${dir} is in use by process ${owner}`)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e
  }
  await writeFile(path, `${process.pid}\n`)
  openInThisProcess.add(dir)
}

const unlock = async (dir: string): Promise<void> => {
  openInThisProcess.delete(dir)
  await rm(join(dir, "journal.lock"), { force: true })
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const FORMAT = "widgethost-embedded-homeserver-journal"
