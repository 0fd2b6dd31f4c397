import { redactMessage, UNSERIALISABLE } from "./log-redaction.ts"

/** The console's live message log: a bounded ring of every message in or out, per session. */

export interface LogEntry {
  readonly at: number
  /** `in`: from the widget to the host; `out`: from the host to the widget. */
  readonly direction: "in" | "out"
  readonly message: unknown
}

export interface MessageLogOptions {
  /** Entries kept per session; older ones are overwritten. Default 200. */
  readonly capacity?: number
  /**
   * Longest entry, in characters of JSON; a longer message is kept as a truncated preview.
   * With `capacity` this bounds the memory one session's log can take. Default 16 384.
   */
  readonly maxEntryChars?: number
  /** Sessions with a log; past it the oldest log is dropped. Protects against logs never forgotten. Default 1000. */
  readonly maxSessions?: number
  /**
   * Keep message contents and secrets (event content, to-device content, OpenID and access
   * tokens, TURN passwords, file data). Default false: the log keeps their size only
   * (log-redaction.ts), so the console never shows what people wrote unless the operator opted in.
   */
  readonly logContent?: boolean
  readonly now?: () => number
}

interface Ring {
  readonly items: Array<LogEntry>
  start: number
}

/**
 * Recent widget traffic per session, in bounded ring buffers, for the console.
 *
 * @example
 * const log = new MessageLog()
 * const session = engine.openSession({ widget, send: (message) => (log.record(key, "out", message), send(message)) })
 * log.get(session.sessionId)   // oldest first, at most 200
 */
export class MessageLog {
  private readonly rings = new Map<string, Ring>()
  private readonly listeners = new Set<(sessionId: string) => void>()
  private readonly capacity: number
  private readonly maxEntryChars: number
  private readonly maxSessions: number
  private readonly now: () => number
  /** Whether contents and secrets are kept (`logContent`); the console says so. */
  readonly logsContent: boolean

  constructor(options: MessageLogOptions = {}) {
    this.capacity = Math.max(1, options.capacity ?? 200)
    this.maxEntryChars = options.maxEntryChars ?? 16_384
    this.maxSessions = Math.max(1, options.maxSessions ?? 1000)
    this.now = options.now ?? Date.now
    this.logsContent = options.logContent === true
  }

  record(sessionId: string, direction: "in" | "out", message: unknown): void {
    let ring = this.rings.get(sessionId)
    if (ring === undefined) {
      if (this.rings.size >= this.maxSessions) this.rings.delete(this.rings.keys().next().value!)
      this.rings.set(sessionId, (ring = { items: [], start: 0 }))
    }
    const entry: LogEntry = { at: this.now(), direction, message: this.bounded(this.logsContent ? message : redactMessage(message)) }
    if (ring.items.length < this.capacity) ring.items.push(entry)
    else {
      ring.items[ring.start] = entry
      ring.start = (ring.start + 1) % this.capacity
    }
    for (const listener of [...this.listeners]) {
      try {
        listener(sessionId)
      } catch {
        // the log must not break the session whose traffic it records
      }
    }
  }

  /** A session's entries, oldest first. */
  get(sessionId: string): ReadonlyArray<LogEntry> {
    const ring = this.rings.get(sessionId)
    if (ring === undefined) return []
    return [...ring.items.slice(ring.start), ...ring.items.slice(0, ring.start)]
  }

  forget(sessionId: string): void {
    this.rings.delete(sessionId)
  }

  /** Sessions with a log, oldest first. */
  sessions(): ReadonlyArray<string> {
    return [...this.rings.keys()]
  }

  /** Called after every `record`; returns the function that stops it. */
  onRecord(listener: (sessionId: string) => void): () => void {
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  /** Keeps small messages as they are and a preview of large ones, so a log never pins a huge message. */
  private bounded(message: unknown): unknown {
    if (message === UNSERIALISABLE) return message
    let text: string | undefined
    try {
      text = JSON.stringify(message)
    } catch {
      return UNSERIALISABLE
    }
    if (text === undefined) return null
    if (text.length <= this.maxEntryChars) return message
    return { "io.widgethost.truncated": true, chars: text.length, preview: text.slice(0, this.maxEntryChars) }
  }
}
