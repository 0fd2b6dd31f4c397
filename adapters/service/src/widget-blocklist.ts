/**
 * Widgets the operator blocked from the console: the widget host closes a blocked widget's
 * session, forgets its websocket token, and refuses to host it again, however often its state
 * event is re-sent (with the same definition or another URL). A widget is named by its room and
 * id, the slot a room member fills: changing the URL does not get round a block. Kept in the data
 * directory (`blocked-widgets.json`), so a block survives restarts.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs"

export interface BlockedWidget {
  readonly id: string
  /** Absent for a widget from the configuration file (no room). */
  readonly roomId?: string
  /** When it was blocked, ISO 8601. */
  readonly at: string
}

const keyOf = (ref: { readonly id: string; readonly roomId?: string }) => `${ref.roomId ?? ""}\u0000${ref.id}`

export class WidgetBlocklist {
  private readonly entries = new Map<string, BlockedWidget>()

  /** `file` absent: in memory only. A missing or unreadable file is an empty list. */
  constructor(
    private readonly file?: string,
    private readonly now: () => Date = () => new Date()
  ) {
    if (file === undefined) return
    let saved: unknown
    try {
      saved = JSON.parse(readFileSync(file, "utf8"))
    } catch {
      return
    }
    for (const entry of Array.isArray(saved) ? saved : []) {
      const { id, roomId, at } = (entry ?? {}) as Record<string, unknown>
      if (typeof id !== "string" || (roomId !== undefined && typeof roomId !== "string")) continue
      this.entries.set(keyOf({ id, ...(roomId === undefined ? {} : { roomId }) }), { id, ...(roomId === undefined ? {} : { roomId }), at: typeof at === "string" ? at : "" })
    }
  }

  has(ref: { readonly id: string; readonly roomId?: string }): boolean {
    return this.entries.has(keyOf(ref))
  }

  /** Blocks the widget (idempotent) and writes the list. */
  add(ref: { readonly id: string; readonly roomId?: string }): BlockedWidget {
    const existing = this.entries.get(keyOf(ref))
    if (existing !== undefined) return existing
    const entry: BlockedWidget = { id: ref.id, ...(ref.roomId === undefined ? {} : { roomId: ref.roomId }), at: this.now().toISOString() }
    this.entries.set(keyOf(ref), entry)
    if (this.file !== undefined) {
      writeFileSync(`${this.file}.tmp`, JSON.stringify(this.list(), null, 2), { mode: 0o600 })
      renameSync(`${this.file}.tmp`, this.file)
    }
    return entry
  }

  list(): ReadonlyArray<BlockedWidget> {
    return [...this.entries.values()]
  }
}
