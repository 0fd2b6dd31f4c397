import { compilePermissions, isStateEvent, type Permissions, type RoomEvent, UPDATE_STATE_VERSIONS, type WidgetMessage } from "@widgethost/core"
import type { DeliveryJournal, WidgetRef } from "./delivery-journal.ts"
import type { MissedEvents, MissedEventsRequest } from "@widgethost/homeserver-client"
import { TRANSPORT_GAP_ACTION } from "@widgethost/websocket"

/**
 * A widget's new session picks up its room events where its last session stopped: the piece
 * between the engine and the transport that makes delivery exactly once across restarts and
 * expired resume windows.
 *
 * The engine delivers to a session only what the homeserver port hands over after the session
 * is ready (MSC2762). So when the session becomes ready (its `notify_capabilities` goes out), this
 * takes the port's room positions: everything after them reaches the session live; everything up
 * to them the widget missed, from its journal position on. For each room the widget may use:
 * - no position yet (its first session): the position becomes the port's, so a later session
 *   knows where this one started;
 * - else the events after the journal position up to the port's are read from the homeserver
 *   (`readMissed`), filtered by the approved capabilities, and sent first, oldest first, as
 *   `send_event` requests of our own (their answers are consumed here). State events are replayed
 *   only to widgets without `update_state`: the others get the current state on every grant.
 *   More than `maxEvents`: a `transport_gap` notice (reason "resume") comes first, then the newest.
 * Meanwhile the engine's own deliveries wait here, and follow in order once the missed ones are
 * out. From then on an engine delivery of an event the journal already has (the port repeats its
 * last sync batch after a crash) is answered here on the widget's behalf and not sent again.
 */

export interface ResumeSource {
  /** The homeserver port's positions (`MatrixHomeserver.roomPositions`). */
  readonly roomPositions: () => ReadonlyMap<string, string>
  readonly readMissed: (request: MissedEventsRequest) => Promise<MissedEvents>
}

export interface DeliveryResumeOptions {
  readonly widget: WidgetRef
  /** The widget's home room: its own room, or for an account widget the viewed room. */
  readonly homeRoom: string | undefined
  readonly journal: DeliveryJournal
  readonly source: ResumeSource
  /** To the engine's session: answers given on the widget's behalf. */
  readonly answer: (message: WidgetMessage) => void
  /** On to the transport. */
  readonly send: (message: WidgetMessage) => void
  /** Missed events sent at most per room; older ones are announced as a gap. Default 1000. */
  readonly maxEvents?: number
  /** Events read from the homeserver at most per room. Default 2000. */
  readonly maxScan?: number
  /** How long to wait for the widget's versions (to tell update_state widgets). Default 10 000 ms. */
  readonly versionsTimeoutMs?: number
  readonly log?: (level: "info" | "warn", message: string, fields?: Record<string, unknown>) => void
}

/** Where a room event delivered by `send_event` goes: what the journal records when it is written. */
export interface Delivered {
  readonly room: string
  readonly event: string
}

/**
 * The room event a message delivers, if it is a toWidget `send_event` request.
 *
 * @example deliveredEvent({ api: "toWidget", widgetId: "w", requestId: "1", action: "send_event", data: event }) // { room, event }
 */
export const deliveredEvent = (message: WidgetMessage): Delivered | undefined => {
  if (message.api !== "toWidget" || message.action !== "send_event" || "response" in message) return undefined
  const { event_id: event, room_id: room } = message.data
  return typeof event === "string" && typeof room === "string" ? { room, event } : undefined
}

const REQUEST_PREFIX = "widgethost-resume-"

type Phase = "waiting" | "catching-up" | "live" | "closed"

export class DeliveryResume {
  private phase: Phase = "waiting"
  private held: Array<WidgetMessage> = []
  private readonly replayed = new Set<string>()
  private seq = 0
  private readonly abort = new AbortController()
  private versions: ((versions: ReadonlyArray<string> | undefined) => void) | undefined
  private versionsTimer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly options: DeliveryResumeOptions) {}

  /** The engine's sink for this session. */
  readonly sink = (message: WidgetMessage): void => {
    if (this.phase === "waiting") {
      this.options.send(message)
      if (message.api === "toWidget" && message.action === "notify_capabilities" && !("response" in message)) this.begin(message.data["approved"])
      return
    }
    const delivered = deliveredEvent(message)
    if (delivered === undefined) return this.options.send(message)
    if (this.phase === "catching-up") return void this.held.push(message)
    this.deliver(message, delivered)
  }

  /** A message from the widget: true when it answers one of our requests (and goes no further). */
  consume(raw: unknown): boolean {
    if (typeof raw !== "object" || raw === null) return false
    if (!("response" in raw)) return false
    const { api, requestId, action, response } = raw as Record<string, unknown>
    if (api !== "toWidget") return false
    if (this.versions !== undefined && action === "supported_api_versions") {
      const list = (response as { supported_versions?: unknown } | null)?.supported_versions
      this.versions(Array.isArray(list) ? list.filter((v): v is string => typeof v === "string") : [])
    }
    return typeof requestId === "string" && requestId.startsWith(REQUEST_PREFIX)
  }

  /** The session ended: stop reading, drop what waits. */
  close(): void {
    this.phase = "closed"
    this.held = []
    this.abort.abort()
    this.versions?.(undefined)
  }

  private begin(approved: unknown): void {
    this.phase = "catching-up"
    // Read now, in the step that subscribes the session: what the port hands over after this
    // reaches the session live, what it handed over before is what the widget may have missed.
    const positions = this.options.source.roomPositions()
    const permissions = compilePermissions(Array.isArray(approved) ? approved.filter((c): c is string => typeof c === "string") : [])
    const versions =
      permissions.receiveStateTypes.size === 0
        ? Promise.resolve(undefined)
        : new Promise<ReadonlyArray<string> | undefined>((resolve) => {
            const settle = (list: ReadonlyArray<string> | undefined) => {
              clearTimeout(this.versionsTimer)
              this.versions = undefined
              resolve(list)
            }
            this.versions = settle
            this.versionsTimer = setTimeout(() => settle(undefined), this.options.versionsTimeoutMs ?? 10_000)
          })
    void this.catchUp(positions, permissions, versions)
  }

  private async catchUp(positions: ReadonlyMap<string, string>, permissions: Permissions, versions: Promise<ReadonlyArray<string> | undefined>): Promise<void> {
    const { widget, journal, homeRoom } = this.options
    const updateState = (await versions)?.some((v) => UPDATE_STATE_VERSIONS.includes(v)) === true
    const keep = (event: RoomEvent) => permissions.mayReceive(event) && permissions.mayUseRoom(event.room_id, homeRoom) && !(updateState && isStateEvent(event))
    for (const [room, upTo] of positions) {
      if (this.phase !== "catching-up") return
      if (!permissions.mayUseRoom(room, homeRoom) || journal.has(widget, room, upTo)) continue
      if (journal.position(widget, room) === undefined) {
        // A first session here: the next one knows where this one started.
        journal.record(widget, room, upTo)
        continue
      }
      try {
        const missed = await this.options.source.readMissed({
          roomId: room,
          upTo,
          seen: (id) => journal.has(widget, room, id),
          keep,
          signal: this.abort.signal,
          ...(this.options.maxEvents === undefined ? {} : { maxEvents: this.options.maxEvents }),
          ...(this.options.maxScan === undefined ? {} : { maxScan: this.options.maxScan })
        })
        if (this.phase !== "catching-up") return
        if (missed.skipped !== 0) this.request(TRANSPORT_GAP_ACTION, { dropped: missed.skipped, reason: "resume", room_id: room })
        for (const event of missed.events) {
          this.replayed.add(event.event_id)
          this.request("send_event", event)
        }
        // Nothing of this room is on its way: the next session may start after `upTo`.
        if (missed.events.length === 0) journal.record(widget, room, upTo)
        if (missed.events.length > 0 || missed.skipped !== 0 || missed.undecryptable > 0) {
          this.options.log?.("info", `widget ${widget.id} caught up in ${room}`, { sent: missed.events.length, skipped: missed.skipped, undecryptable: missed.undecryptable })
        }
      } catch (error) {
        if (this.phase !== "catching-up") return
        this.options.log?.("warn", `widget ${widget.id}: cannot read what it missed in ${room}`, { error: error instanceof Error ? error.message : String(error) })
        this.request(TRANSPORT_GAP_ACTION, { dropped: null, reason: "resume", room_id: room })
      }
    }
    if (this.phase !== "catching-up") return
    this.phase = "live"
    const held = this.held
    this.held = []
    for (const message of held) this.deliver(message, deliveredEvent(message)!)
  }

  private deliver(message: WidgetMessage, delivered: Delivered): void {
    if (!this.replayed.has(delivered.event) && !this.options.journal.has(this.options.widget, delivered.room, delivered.event)) return this.options.send(message)
    // The widget has it already: answer the engine as the widget would have, send nothing.
    this.options.answer({ ...message, response: {} })
  }

  private request(action: string, data: object): void {
    this.options.send({ api: "toWidget", widgetId: this.options.widget.id, requestId: `${REQUEST_PREFIX}${++this.seq}`, action, data: data as Readonly<Record<string, unknown>> })
  }
}
