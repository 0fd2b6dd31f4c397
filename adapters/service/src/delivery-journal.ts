import { closeSync, fsync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs"
import { dirname } from "node:path"

/**
 * The delivery journal: per widget and room, the room events the service has written to the
 * widget's socket, so that the widget's next session (after a restart, or after its resume window
 * ran out) continues where the last one stopped, and nothing it already got is sent again.
 *
 * ## File
 * `deliveries.jsonl` in the data directory, one JSON object per line, appended:
 *   {"widget":"demo","widgetRoom":"!r:hs","room":"!r:hs","event":"$e"}
 * `widget` and `widgetRoom` name the widget (its id and its own room, "" for an account widget),
 * `room` and `event` the event. The last line of a (widget, room) is its position; the lines before
 * it are events the widget already has, which a re-delivery after a crash must not repeat. A line
 * that does not parse (a write torn by power loss) is skipped.
 *
 * ## Durability
 * `record` writes its line with write(2) before returning, and the transport calls it right before
 * the message goes to `ws.send`: when the process dies (SIGKILL, OOM, a crash) the line is already
 * in the kernel's page cache, so after a restart every position is at least as far as what the
 * process had handed to a socket. fsync runs in batches, `syncIntervalMs` after the first record
 * not yet synced, and at `close`: only an operating system crash or power loss can lose records,
 * at most those of the last interval, and their events are then sent again.
 *
 * ## Size
 * Per (widget, room) the last `keep` events are remembered (enough to cover a sync batch that the
 * homeserver port repeats after a crash). The file is rewritten with just those (temp file, fsync,
 * rename) when opened and whenever `compactBytes` have been appended since.
 */

/** A hosted widget as the journal keys it. */
export interface WidgetRef {
  readonly id: string
  /** The widget's own room; absent for an account widget. */
  readonly roomId?: string
}

export interface DeliveryJournalOptions {
  /** Delay from the first unsynced record to its fsync. Bounds what an OS crash can lose. Default 100 ms. */
  readonly syncIntervalMs?: number
  /** Events remembered per (widget, room). Default 1024. */
  readonly keep?: number
  /** Bytes appended before the file is compacted. Bounds the file. Default 4 MiB. */
  readonly compactBytes?: number
  /** A write or fsync failed: the journal goes on in memory (no duplicates in this run), but a restart may repeat events. */
  readonly onError?: (error: unknown) => void
}

export interface DeliveryJournalStats {
  readonly records: number
  readonly syncs: number
  readonly compactions: number
  readonly errors: number
  /** Lines skipped on open (torn or foreign). */
  readonly skipped: number
}

interface Line {
  readonly widget: string
  readonly widgetRoom: string
  readonly room: string
  readonly event: string
}

const isLine = (v: unknown): v is Line => {
  if (typeof v !== "object" || v === null) return false
  const { widget, widgetRoom, room, event } = v as Record<string, unknown>
  return typeof widget === "string" && typeof widgetRoom === "string" && typeof room === "string" && typeof event === "string"
}

/** Events of one (widget, room), oldest first; a Set keeps insertion order. */
type Seen = Set<string>

const keyOf = (widget: string, widgetRoom: string) => `${widgetRoom}\u0000${widget}`
const refKey = (ref: WidgetRef) => keyOf(ref.id, ref.roomId ?? "")

export class DeliveryJournal {
  private readonly widgets = new Map<string, { readonly widget: string; readonly widgetRoom: string; readonly rooms: Map<string, Seen> }>()
  private readonly syncIntervalMs: number
  private readonly keep: number
  private readonly compactBytes: number
  private readonly counters = { records: 0, syncs: 0, compactions: 0, errors: 0, skipped: 0 }
  private fd: number | undefined
  private appended = 0
  private dirty = false
  private timer: NodeJS.Timeout | undefined
  private syncing: Promise<void> | undefined
  private compactPending = false

  private constructor(
    private readonly file: string,
    private readonly options: DeliveryJournalOptions
  ) {
    this.syncIntervalMs = options.syncIntervalMs ?? 100
    this.keep = options.keep ?? 1024
    this.compactBytes = options.compactBytes ?? 4 * 1024 * 1024
  }

  /**
   * Loads the journal (a missing file is an empty journal), compacts it and opens it for appending.
   *
   * @example
   * const journal = DeliveryJournal.open(join(dataDir, "deliveries.jsonl"))
   * journal.record({ id: "demo", roomId }, roomId, eventId)
   * journal.position({ id: "demo", roomId }, roomId) // eventId
   */
  static open(file: string, options: DeliveryJournalOptions = {}): DeliveryJournal {
    const journal = new DeliveryJournal(file, options)
    journal.load()
    journal.compact()
    return journal
  }

  /** The last event recorded for this widget in `room`. */
  position(widget: WidgetRef, room: string): string | undefined {
    const seen = this.widgets.get(refKey(widget))?.rooms.get(room)
    if (seen === undefined || seen.size === 0) return undefined
    let last: string | undefined
    for (const id of seen) last = id
    return last
  }

  /** Whether `eventId` is among the last `keep` events recorded for this widget in `room`. */
  has(widget: WidgetRef, room: string, eventId: string): boolean {
    return this.widgets.get(refKey(widget))?.rooms.get(room)?.has(eventId) === true
  }

  /** Records that `eventId` of `room` went to this widget (or that it starts after it); on disk (page cache) when this returns. */
  record(widget: WidgetRef, room: string, eventId: string): void {
    const line: Line = { widget: widget.id, widgetRoom: widget.roomId ?? "", room, event: eventId }
    this.remember(line)
    this.counters.records++
    if (this.fd === undefined) return
    const bytes = `${JSON.stringify(line)}\n`
    try {
      writeSync(this.fd, bytes)
    } catch (error) {
      this.fail(error)
      return
    }
    this.appended += bytes.length
    this.dirty = true
    this.scheduleSync()
    if (this.appended >= this.compactBytes) this.compactSoon()
  }

  stats(): DeliveryJournalStats {
    return { ...this.counters }
  }

  /** Syncs what is pending and closes the file; later records stay in memory only. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    await this.syncing
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (this.fd === undefined) return
    try {
      if (this.dirty) fsyncSync(this.fd)
      this.counters.syncs += this.dirty ? 1 : 0
    } catch (error) {
      this.fail(error)
    }
    this.dirty = false
    closeSync(this.fd)
    this.fd = undefined
  }

  private remember(line: Line): void {
    const key = keyOf(line.widget, line.widgetRoom)
    let entry = this.widgets.get(key)
    if (entry === undefined) this.widgets.set(key, (entry = { widget: line.widget, widgetRoom: line.widgetRoom, rooms: new Map() }))
    let seen = entry.rooms.get(line.room)
    if (seen === undefined) entry.rooms.set(line.room, (seen = new Set()))
    seen.delete(line.event) // the newest record is the position, even when it names an older event
    seen.add(line.event)
    if (seen.size > this.keep) seen.delete(seen.values().next().value!)
  }

  private load(): void {
    let text: string
    try {
      text = readFileSync(this.file, "utf8")
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return
      throw error
    }
    for (const raw of text.split("\n")) {
      if (raw.length === 0) continue
      let line: unknown
      try {
        line = JSON.parse(raw)
      } catch {
        this.counters.skipped++
        continue
      }
      if (isLine(line)) this.remember(line)
      else this.counters.skipped++
    }
  }

  /** Rewrites the file with what is remembered, durably, and reopens it for appending. */
  private compact(): void {
    const tmp = `${this.file}.tmp`
    const lines: Array<string> = []
    for (const { widget, widgetRoom, rooms } of this.widgets.values()) {
      for (const [room, seen] of rooms) for (const event of seen) lines.push(JSON.stringify({ widget, widgetRoom, room, event } satisfies Line))
    }
    const out = openSync(tmp, "w", 0o600)
    try {
      if (lines.length > 0) writeSync(out, `${lines.join("\n")}\n`)
      fsyncSync(out)
    } finally {
      closeSync(out)
    }
    renameSync(tmp, this.file)
    try {
      const dir = openSync(dirname(this.file), "r")
      try {
        fsyncSync(dir)
      } finally {
        closeSync(dir)
      }
    } catch {
      // Some filesystems cannot fsync a directory; the rename is then as durable as they make it.
    }
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = openSync(this.file, "a", 0o600)
    this.appended = 0
    this.dirty = false
    this.counters.compactions++
  }

  private compactSoon(): void {
    // An fsync in flight holds the old descriptor: compact once it is done.
    if (this.syncing !== undefined) return void (this.compactPending = true)
    try {
      this.compact()
    } catch (error) {
      this.fail(error)
    }
  }

  private scheduleSync(): void {
    if (this.timer !== undefined || this.syncing !== undefined) return
    this.timer = setTimeout(() => this.syncNow(), this.syncIntervalMs)
    this.timer.unref()
  }

  private syncNow(): void {
    this.timer = undefined
    const fd = this.fd
    if (!this.dirty || fd === undefined) return
    this.dirty = false
    this.syncing = new Promise<void>((resolve) =>
      fsync(fd, (error) => {
        if (error === null) this.counters.syncs++
        else this.fail(error)
        this.syncing = undefined
        resolve()
        if (this.compactPending && this.fd !== undefined) {
          this.compactPending = false
          this.compactSoon()
        }
        if (this.dirty) this.scheduleSync()
      })
    )
  }

  private fail(error: unknown): void {
    this.counters.errors++
    try {
      this.options.onError?.(error)
    } catch {
      // nowhere left to report it
    }
  }
}
