/**
 * A drop-in for matrix-widget-api's `ClientWidgetApi`: the same constructor `(widget, iframe,
 * driver)`, events and methods, with any `WidgetDriver`, run through the widgethost engine. The
 * engine speaks the Widget API with the widget (checks, capabilities, ids, timeouts, rate
 * limits); the driver does what the reference asks of it, through the engine's homeserver port
 * (driver-port.ts), approver and client hooks (driver-actions.ts); the client's `action:`
 * listeners and `transport.reply` keep working (widget-traffic.ts).
 *
 * ```
 *  widget ─postMessage─▶ @widgethost/post-message ─▶ WidgetTraffic ─(action:<name>, cancelable)─▶ client listeners
 *                                                         │ not taken over
 *                                                         ▼
 *                                               engine session ─▶ DriverPort ─▶ WidgetDriver
 *  client: feedEvent / feedStateUpdate / feedToDevice ─▶ DriverPort's feed ─▶ engine ─▶ widget
 * ```
 *
 * @example
 * // import { ClientWidgetApi } from "matrix-widget-api"
 * import { ClientWidgetApi } from "@widgethost/client-widget-api"
 * const api = new ClientWidgetApi(widget, iframe, new ElementWidgetDriver(widget, kind, virtual, roomId))
 * api.once("ready", () => void api.updateTheme({ name: "dark" }))
 */
import type { Clock, Limits } from "@widgethost/core"
import { createEngine, type Engine, type EngineSession } from "@widgethost/engine"
import { attachPostMessageTransport, type PostMessageTransport } from "@widgethost/post-message"
import { EventEmitter } from "events"
import type {
  ApiVersion,
  IModalWidgetOpenRequestData,
  IModalWidgetOpenRequestDataButton,
  IModalWidgetReturnData,
  IRoomEvent,
  IScreenshotActionResponseData,
  ISupportedVersionsActionResponseData,
  IThemeChangeActionRequestData,
  IWidgetApiResponseData,
  Widget,
  WidgetDriver
} from "matrix-widget-api"
import { CapabilityChecks } from "./capability-checks.ts"
import { driverActions, driverHooks } from "./driver-actions.ts"
import { DriverPort } from "./driver-port.ts"
import { OpaqueCapabilities } from "./opaque-capabilities.ts"
import { definitionOf } from "./widget-definition.ts"
import { type DropInTransport, WidgetTraffic } from "./widget-traffic.ts"

/** A to-device message as the client feeds it (matrix-widget-api 1.19 does not export its type). */
export interface ToDeviceMessage {
  readonly type: string
  readonly sender: string
  readonly content: Readonly<Record<string, unknown>>
}

/** What the reference does not take but a client (or a test) may want to set. All optional. */
export interface ClientWidgetApiOptions {
  /** The window the widget's messages arrive at. Default: `globalThis`, as the reference. */
  readonly window?: Window
  /** The account's user and device ids, when known (nothing of the engine needs them). */
  readonly userId?: string
  readonly deviceId?: string
  /** The engine's limits (request timeout, rate window, …). */
  readonly limits?: Partial<Limits>
  /** The engine's clock (a simulated one in tests). */
  readonly clock?: Clock
}

/**
 * The reference sends these whatever versions the widget announced, and Element Web relies on it:
 * matrix-widget-api's `WidgetApi` never announces `org.matrix.msc2790`, yet its modal widgets are
 * sent `widget_config`, `button_clicked` and `close_modal`. The engine alone would wait for the
 * widget's versions and refuse them.
 */
const UNGATED_REQUESTS = ["theme_change", "language_change", "widget_config", "button_clicked", "close_modal"]

export class ClientWidgetApi extends EventEmitter {
  /** Send the client's toWidget requests and answer the requests its `action:` listeners took over. */
  readonly transport: DropInTransport
  private readonly traffic: WidgetTraffic
  private readonly port: DriverPort
  private readonly engine: Engine
  private readonly session: EngineSession
  private readonly postMessage: PostMessageTransport
  private readonly checks = new CapabilityChecks()
  private viewedRoomId: string | null = null

  constructor(
    readonly widget: Widget,
    iframe: HTMLIFrameElement,
    driver: WidgetDriver,
    options: ClientWidgetApiOptions = {}
  ) {
    super()
    if (!iframe?.contentWindow) throw new Error("No iframe supplied")
    if (!widget) throw new Error("Invalid widget")
    if (!driver) throw new Error("Invalid driver")
    this.port = new DriverPort(driver, { ...(options.userId === undefined ? {} : { userId: options.userId }), ...(options.deviceId === undefined ? {} : { deviceId: options.deviceId }) })
    const served = driverActions(driver)
    const opaque = new OpaqueCapabilities(served.capabilities)
    this.engine = createEngine({
      homeserver: this.port,
      approver: async ({ requested }) => [...(await driver.validateCapabilities(new Set(requested)))],
      openIdApprover: () => this.port.openId.approve(),
      policy: { rules: [], clientCapabilities: opaque.declared },
      hooks: driverHooks(driver),
      customActions: served.customActions,
      apiVersions: served.apiVersions,
      ungatedRequests: UNGATED_REQUESTS,
      ...(options.limits === undefined ? {} : { limits: options.limits }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      onError: (error, where) => {
        // The reference's "error:preparing": the driver's validateCapabilities failed.
        if (where.fault === "approver") this.emit("error:preparing", error)
        else console.error(`[ClientWidgetApi] ${where.fault} failed for widget ${where.widgetId}`, error)
      }
    })
    this.traffic = new WidgetTraffic(widget.id, widget.origin, this, opaque, () => this.shutDown())
    this.transport = this.traffic
    let session: EngineSession | undefined
    this.postMessage = attachPostMessageTransport({
      iframe,
      widgetUrl: widget.origin,
      ...(options.window === undefined ? {} : { window: options.window }),
      open: (sink) => this.traffic.attach((session = this.engine.openSession({ widget: definitionOf(widget), send: this.traffic.outgoing(sink), origin: widget.origin })))
    })
    this.session = session!
    this.session.on("phase", ({ phase, previous }) => {
      if (phase === "negotiating" && previous === "loading") this.emit("preparing")
      else if (phase === "ready" && previous === "negotiating") this.emit("ready")
    })
  }

  // ---- capabilities ------------------------------------------------------------------------------

  private get approved(): CapabilityChecks {
    this.checks.update(this.session.info().approved)
    return this.checks
  }

  hasCapability(capability: string): boolean {
    return this.approved.has(capability)
  }

  canUseRoomTimeline(roomId: string): boolean {
    return this.approved.canUseRoomTimeline(roomId)
  }

  canSendRoomEvent(eventType: string, msgtype: string | null = null): boolean {
    return this.approved.canSendRoomEvent(eventType, msgtype)
  }

  canSendStateEvent(eventType: string, stateKey: string): boolean {
    return this.approved.canSendStateEvent(eventType, stateKey)
  }

  canSendToDeviceEvent(eventType: string): boolean {
    return this.approved.canSendToDeviceEvent(eventType)
  }

  canReceiveRoomEvent(eventType: string, msgtype: string | null = null): boolean {
    return this.approved.canReceiveRoomEvent(eventType, msgtype)
  }

  canReceiveStateEvent(eventType: string, stateKey: string | null): boolean {
    return this.approved.canReceiveStateEvent(eventType, stateKey)
  }

  canReceiveToDeviceEvent(eventType: string): boolean {
    return this.approved.canReceiveToDeviceEvent(eventType)
  }

  canReceiveRoomAccountData(eventType: string): boolean {
    return this.approved.canReceiveRoomAccountData(eventType)
  }

  // ---- what the client feeds in ------------------------------------------------------------------

  /**
   * A new event in one of the user's rooms (state events too). The engine delivers it to the
   * widget if it may receive it; resolves once it is handed over (not when the widget
   * acknowledged it: the engine retries nothing and tells the widget each event once).
   */
  feedEvent(rawEvent: IRoomEvent, currentViewedRoomId?: string): Promise<void> {
    if (currentViewedRoomId !== undefined) this.setViewedRoomId(currentViewedRoomId)
    this.port.feedRoomEvent(rawEvent)
    return Promise.resolve()
  }

  /** A room state entry changed. A state event fed here and through `feedEvent` reaches the widget once. */
  feedStateUpdate(rawEvent: IRoomEvent): Promise<void> {
    if (rawEvent.state_key === undefined) return Promise.reject(new Error("Not a state event"))
    this.port.feedRoomEvent(rawEvent)
    return Promise.resolve()
  }

  /** A to-device message the client received; `encrypted`: how it really arrived. */
  feedToDevice(message: ToDeviceMessage, encrypted: boolean): Promise<void> {
    this.port.feedToDevice({ type: message.type, sender: message.sender, content: message.content, encrypted })
    return Promise.resolve()
  }

  /** The room the user views: where the widget acts and whose state it learns. */
  setViewedRoomId(roomId: string | null): void {
    this.viewedRoomId = roomId
    this.engine.setViewedRoom(roomId ?? undefined)
    // Now, not at the end of the turn: an event fed next must be routed for the new room.
    this.engine.flush()
  }

  /** The room last given to {@link setViewedRoomId}. */
  get viewedRoom(): string | null {
    return this.viewedRoomId
  }

  // ---- the client's toWidget requests ------------------------------------------------------------

  /**
   * The widget's `supported_api_versions` answer. The engine asks the widget once per document
   * (when it first needs them, or now) and answers from that. As the reference, a failure (the
   * widget cannot answer, the session is not ready yet, or stopped) resolves to `[]` with a warning.
   */
  async getWidgetVersions(): Promise<ApiVersion[]> {
    try {
      const answer = await this.transport.send<object, ISupportedVersionsActionResponseData>("supported_api_versions", {})
      return [...answer.supported_versions]
    } catch (error) {
      console.warn("[ClientWidgetApi] non-fatal error getting supported widget versions: ", error)
      return []
    }
  }

  updateTheme(theme: IThemeChangeActionRequestData): Promise<IWidgetApiResponseData> {
    return this.transport.send("theme_change", theme)
  }

  updateLanguage(lang: string): Promise<IWidgetApiResponseData> {
    return this.transport.send("language_change", { lang })
  }

  /**
   * Asks the widget for a screenshot. Unlike the reference, only a widget approved for
   * `m.capability.screenshot` is asked (MSC2764: "If the widget is approved for use of the
   * m.capbility.screenshot capability, the client can send a screenshot action"); any other is
   * refused, nothing sent. Element Web offers screenshots only where `hasCapability` says so.
   */
  takeScreenshot(): Promise<IScreenshotActionResponseData> {
    return this.transport.send("screenshot", {})
  }

  updateVisibility(isVisible: boolean): Promise<IWidgetApiResponseData> {
    return this.transport.send("visibility", { visible: isVisible })
  }

  /** MSC2790, to a modal widget; sent whatever versions it announced, as the reference (see `UNGATED_REQUESTS`). */
  sendWidgetConfig(data: IModalWidgetOpenRequestData): Promise<void> {
    // Resolves with the widget's answer, typed void, as the reference (its `.then()` passes it on).
    return this.transport.send<IModalWidgetOpenRequestData, void>("widget_config", data)
  }

  notifyModalWidgetButtonClicked(id: IModalWidgetOpenRequestDataButton["id"]): Promise<void> {
    return this.transport.send<object, void>("button_clicked", { id })
  }

  notifyModalWidgetClose(data: IModalWidgetReturnData): Promise<void> {
    return this.transport.send<IModalWidgetReturnData, void>("close_modal", data)
  }

  /** Stops talking to the widget: the transport detaches, the session closes, the driver's TURN generator ends. */
  stop(): void {
    this.traffic.stop()
  }

  private shutDown(): void {
    this.postMessage.detach()
    this.engine.stop()
    this.port.turn.stop()
  }
}
