/**
 * The service's widgets: read from room state (`m.widget`, `im.vector.modular.widgets`) of the
 * watched rooms and from configuration, each given a transport per MSC3009 and a rendered URL,
 * and kept live: widgets added, changed or removed in room state are picked up as they happen.
 * A headless host serves websockets only; a widget that offers nothing else is listed with
 * transport "none" and not hosted.
 */
import { Effect } from "effect"
import {
  chooseTransport,
  type HomeserverPort,
  type HostTransports,
  isStateEvent,
  parseWidgetDefinition,
  renderWidgetUrl,
  type RoomEvent,
  type WidgetDefinition,
  WIDGET_STATE_EVENT_TYPES,
  type WidgetMessage,
  Result
} from "@widgethost/core"
import { delegateSession, type Engine, type EngineSession } from "@widgethost/engine"
import type { ConfiguredWidget } from "./config.ts"
import type { DeliveryJournal } from "./delivery-journal.ts"
import { type Delivered, deliveredEvent, DeliveryResume, type ResumeSource } from "./delivery-resume.ts"
import type { WebsocketTransport } from "@widgethost/websocket"
import { WidgetBlocklist } from "./widget-blocklist.ts"

export interface HostedWidget {
  readonly id: string
  readonly roomId?: string
  readonly name?: string
  readonly transport: "m.websockets" | "m.postmessage" | "none"
  /** The URL rendered from the template; a websocket widget's carries its websocket URI. Empty for a blocked widget. */
  readonly url: string
  /** Blocked from the console: not hosted, no URI (widget-blocklist.ts). */
  readonly blocked?: true
}

export interface WidgetHostOptions {
  readonly engine: Engine
  readonly transport: WebsocketTransport
  readonly homeserver: HomeserverPort
  readonly host: HostTransports
  readonly baseUrl: string
  readonly client: { readonly id: string; readonly theme: string; readonly language: string }
  readonly displayName?: string
  /** Every message in or out of a session, for the console's message log. */
  readonly onMessage?: (sessionId: string, direction: "in" | "out", message: unknown) => void
  readonly onChange?: () => void
  readonly onSessionClosed?: (sessionId: string) => void
  readonly log?: (level: "info" | "warn", message: string, fields?: Record<string, unknown>) => void
  /** The websocket token of a widget, to keep its URI across restarts; absent: a fresh one per registration. */
  readonly tokenFor?: (definition: WidgetDefinition) => string
  /** Journal what reaches each widget, and start its every new session where the last one stopped (see delivery-resume.ts). */
  readonly resume?: { readonly journal: DeliveryJournal; readonly source: ResumeSource; readonly viewedRoom?: string }
  /** Widgets the operator blocked: never hosted (default: an empty list in memory). */
  readonly blocklist?: WidgetBlocklist
}

interface Entry {
  readonly widget: HostedWidget
  readonly definition: WidgetDefinition
  /** Fingerprint of the definition, so an unchanged state event re-sent does not restart the widget. */
  readonly fingerprint: string
  readonly unregister: () => void
}

/** The origin a browser reports for a page at `url`; undefined for non-web URLs (their pages report `null`, never admitted). */
const pageOrigin = (url: string): string | undefined => {
  try {
    const parsed = new URL(url)
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.origin : undefined
  } catch {
    return undefined
  }
}

const keyOf = (roomId: string | undefined, id: string) => `${roomId ?? ""}\u0000${id}`

export class WidgetHost {
  private readonly entries = new Map<string, Entry>()
  private readonly unsubscribe: () => void
  private watched = new Set<string>()

  private readonly blocklist: WidgetBlocklist

  constructor(private readonly options: WidgetHostOptions) {
    this.blocklist = options.blocklist ?? new WidgetBlocklist()
    this.unsubscribe = options.homeserver.subscribe((update) => {
      if (update._tag === "RoomEvent") this.onRoomEvent(update.event)
    })
  }

  list(): ReadonlyArray<HostedWidget> {
    return [...this.entries.values()].map((entry) => entry.widget)
  }

  /** Hosts the configured widgets and every widget in the rooms' current state. */
  async start(rooms: ReadonlyArray<string>, configured: ReadonlyArray<ConfiguredWidget>): Promise<void> {
    this.watched = new Set(rooms)
    for (const widget of configured) {
      const parsed = parseWidgetDefinition({ source: "config", id: widget.id, content: widget, ...(widget.roomId === undefined ? {} : { roomId: widget.roomId }) })
      if (Result.isFailure(parsed)) {
        this.options.log?.("warn", `configured widget ${widget.id} is invalid: ${parsed.failure.detail}`)
        continue
      }
      this.put(parsed.success)
    }
    for (const roomId of rooms) {
      for (const type of WIDGET_STATE_EVENT_TYPES) {
        const events = await Effect.runPromise(this.options.homeserver.readState(roomId, type))
        for (const event of events) this.onRoomEvent(event)
      }
    }
  }

  private onRoomEvent(event: RoomEvent): void {
    if (!isStateEvent(event) || !WIDGET_STATE_EVENT_TYPES.includes(event.type) || !this.watched.has(event.room_id)) return
    const parsed = parseWidgetDefinition({ source: "room-state", event })
    if (Result.isSuccess(parsed)) return this.put(parsed.success)
    if (parsed.failure.reason === "Removed") return this.remove(event.room_id, event.state_key)
    this.options.log?.("warn", `widget ${event.state_key} in ${event.room_id} is invalid: ${parsed.failure.detail}`)
  }

  private put(definition: WidgetDefinition): void {
    const key = keyOf(definition.roomId, definition.id)
    const fingerprint = JSON.stringify(definition)
    const existing = this.entries.get(key)
    if (existing?.fingerprint === fingerprint) return
    existing?.unregister()
    this.entries.delete(key)

    const { engine, transport, homeserver, host, client } = this.options
    const choice = chooseTransport(definition, host)
    const base = {
      id: definition.id,
      ...(definition.roomId === undefined ? {} : { roomId: definition.roomId }),
      ...(definition.name === undefined ? {} : { name: definition.name })
    }
    if (this.blocklist.has(base)) {
      this.options.log?.("warn", `widget ${definition.id} is blocked: not hosted`, { roomId: definition.roomId })
      this.entries.set(key, { widget: { ...base, transport: "none", url: "", blocked: true }, definition, fingerprint, unregister: () => {} })
      this.options.onChange?.()
      return
    }
    const variables = {
      widgetId: definition.id,
      userId: homeserver.userId,
      deviceId: homeserver.deviceId,
      ...(definition.roomId === undefined ? {} : { roomId: definition.roomId }),
      ...(this.options.displayName === undefined ? {} : { displayName: this.options.displayName }),
      clientId: client.id,
      clientTheme: client.theme,
      clientLanguage: client.language,
      baseUrl: this.options.baseUrl,
      data: definition.data
    }
    if (Result.isFailure(choice) || choice.success.transport !== "m.websockets") {
      // A headless host has no frame to post into.
      this.options.log?.("warn", `widget ${definition.id} offers no transport this host serves`, { offered: definition.transports })
      this.entries.set(key, { widget: { ...base, transport: "none", url: renderWidgetUrl(definition.url, variables) }, definition, fingerprint, unregister: () => {} })
      this.options.onChange?.()
      return
    }
    const { onMessage, resume } = this.options
    const ref = { id: definition.id, ...(definition.roomId === undefined ? {} : { roomId: definition.roomId }) }
    const homeRoom = definition.roomId ?? resume?.viewedRoom
    // A browser widget may connect from its own page's origin. Safe: the token is still checked
    // first (401 without it), and the URI carrying the token is handed only to that page, in its
    // URL, so admitting the origin that URL names lets no page in that did not already hold the
    // token. Every other browser origin stays refused (403), so a page elsewhere that learnt the
    // URI cannot use it.
    const origin = pageOrigin(renderWidgetUrl(definition.url, variables))
    const registration = transport.register<Delivered>(
      definition.id,
      (send, connection) => {
        const out = (message: WidgetMessage) => {
          onMessage?.(session.sessionId, "out", message)
          send(message)
        }
        const gate =
          resume === undefined
            ? undefined
            : new DeliveryResume({
                widget: ref,
                homeRoom,
                journal: resume.journal,
                source: resume.source,
                answer: (message) => session.receive(message),
                send: out,
                ...(this.options.log === undefined ? {} : { log: this.options.log })
              })
        const session: EngineSession = engine.openSession({
          widget: definition,
          waitForIframeLoad: false,
          transport: "m.websockets",
          // The page's origin, for policy rules and the console's prompt; a client without one stays without.
          ...(connection.origin === undefined ? {} : { origin: connection.origin }),
          send: gate?.sink ?? out
        })
        this.options.onChange?.()
        session.onClose(() => {
          gate?.close()
          this.options.onSessionClosed?.(session.sessionId)
          this.options.onChange?.()
        })
        if (onMessage === undefined && gate === undefined) return session
        // The transport's view of the session: inbound messages logged, answers to the resume's own requests kept from it.
        return delegateSession(session, {
          receive: (raw: unknown) => {
            onMessage?.(session.sessionId, "in", raw)
            if (gate?.consume(raw) !== true) session.receive(raw)
          }
        })
      },
      {
        ...(origin === undefined ? {} : { origins: [origin] }),
        ...(this.options.tokenFor === undefined ? {} : { token: this.options.tokenFor(definition) }),
        ...(resume === undefined ? {} : { onWrite: { mark: deliveredEvent, written: (d: Delivered) => resume.journal.record(ref, d.room, d.event) } })
      }
    )
    const url = renderWidgetUrl(definition.url, { ...variables, transport: "m.websockets", websocketUri: registration.uri })
    this.entries.set(key, { widget: { ...base, transport: "m.websockets", url }, definition, fingerprint, unregister: registration.unregister })
    this.options.log?.("info", `hosting widget ${definition.id}`, { roomId: definition.roomId, transport: "m.websockets" })
    this.options.onChange?.()
  }

  /**
   * Blocks a widget: its connection and session close (the transport's 4410), its token is
   * forgotten, and it is not hosted again, whatever its state event says next. False when no such
   * widget is hosted.
   */
  block(ref: { readonly id: string; readonly roomId?: string }): boolean {
    const key = keyOf(ref.roomId, ref.id)
    const entry = this.entries.get(key)
    if (entry === undefined) return false
    this.blocklist.add(ref)
    entry.unregister()
    this.entries.delete(key)
    this.options.log?.("info", `widget ${ref.id} blocked from the console`, { roomId: ref.roomId })
    this.put(entry.definition)
    return true
  }

  private remove(roomId: string, id: string): void {
    const key = keyOf(roomId, id)
    const entry = this.entries.get(key)
    if (entry === undefined) return
    entry.unregister()
    this.entries.delete(key)
    this.options.log?.("info", `widget ${id} removed from ${roomId}`)
    this.options.onChange?.()
  }

  close(): void {
    this.unsubscribe()
    for (const entry of this.entries.values()) entry.unregister()
    this.entries.clear()
  }
}
