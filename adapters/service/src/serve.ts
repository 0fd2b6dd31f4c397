/**
 * `widgethost serve`: one process hosting the widgets of a Matrix account. With no homeserver
 * configured it runs the embedded homeserver in the data directory, with a local account and a
 * public demo room (with the demo chat and call widgets, served by the widget listener, demo/) that
 * other local clients can join.
 */
import { randomBytes } from "node:crypto"
import { mkdirSync, readFileSync, writeFileSync, accessSync, constants, renameSync } from "node:fs"
import { join, resolve } from "node:path"
import { headlessHost, type HostTransports } from "@widgethost/core"
import { createEngine, type Engine } from "@widgethost/engine"
import { type ServiceConfig } from "./config.ts"
import { startEmbeddedHomeserver, type EmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import type { Logger } from "./log.ts"
import { connectHomeserver, DeviceVerification, type MatrixHomeserver, type OnLoadProgress } from "@widgethost/homeserver-client"
import { HomeserverHealthRecorder } from "./homeserver-health.ts"
import type { WebsocketTransport } from "@widgethost/websocket"
import { WidgetHost } from "./widget-host.ts"
import { startOnStablePort, widgetToken } from "./widget-uris.ts"
import { DeliveryJournal } from "./delivery-journal.ts"
import { readMissedEvents } from "@widgethost/homeserver-client"
import { ApprovalQueue } from "./approvals.ts"
import { resolveRooms } from "./configured-rooms.ts"
import { engineAdminModel, startAdminServer } from "./admin.ts"
import { MessageLog } from "./message-log.ts"
import { embeddedUserCreator } from "./admin-users.ts"
import { establishDeviceTrust, trustNow } from "./device-trust.ts"
import { fromEffectPort } from "@widgethost/core/effect"
import { StartupError } from "./startup-error.ts"
import { DEMO_WIDGETS, ensureDemoRoom, ensureDemoWidgets } from "./demo/demo-room.ts"
import { startDemoPages } from "./demo/demo-pages.ts"
import { addUserCommand } from "./admin-account.ts"
import { WidgetBlocklist } from "./widget-blocklist.ts"

export interface ReadyLine {
  readonly ready: {
    readonly homeserver: string
    readonly user_id: string
    readonly device_id: string
    readonly rooms: ReadonlyArray<string>
    readonly admin_url: string
    readonly admin_token: string
    /** What `/register` on the embedded homeserver asks for; null with open registration or another homeserver. */
    readonly registration_token: string | null
    readonly widgets: ReadonlyArray<{ readonly id: string; readonly room_id: string | null; readonly transport: string; readonly url: string }>
    /**
     * The demo widgets' links, to open in a browser (their websocket URI filled in); present when
     * the service runs its demo room (the embedded homeserver with no rooms configured).
     */
    readonly demo?: { readonly chat?: string; readonly call?: string }
  }
}

export interface RunningService {
  readonly ready: ReadyLine
  readonly engine: Engine
  readonly homeserver: MatrixHomeserver
  readonly embedded?: EmbeddedHomeserver
  readonly approvals: ApprovalQueue
  readonly stop: () => Promise<void>
}

export { StartupError }

/** What the service remembers about itself between runs of the embedded default. */
interface ServiceState {
  readonly password: string
  readonly demoRoom?: string
  readonly adminToken: string
  /** The embedded homeserver keeps its port, so its URL (and every client's session) survives restarts. */
  readonly homeserverPort?: number
  /** The embedded homeserver's registration token, kept so what was handed out stays valid. */
  readonly registrationToken?: string
  /** Widget tokens derive from it, and the widget transport keeps its port: widget URIs survive restarts. */
  readonly widgetSecret?: string
  readonly widgetPort?: number
}

const writeJsonAtomically = (file: string, value: unknown) => {
  writeFileSync(`${file}.tmp`, JSON.stringify(value, null, 2), { mode: 0o600 })
  renameSync(`${file}.tmp`, file)
}

const prepareDataDir = (dir: string): string => {
  const absolute = resolve(dir)
  try {
    mkdirSync(absolute, { recursive: true })
    accessSync(absolute, constants.W_OK)
    writeFileSync(join(absolute, ".write-test"), "")
  } catch (error) {
    throw new StartupError(`data directory ${absolute} is not writable (${(error as NodeJS.ErrnoException).code ?? String(error)})`)
  }
  return absolute
}

/**
 * The service's kept state, with every secret it generates present: those missing (a first start,
 * or a data directory from before they existed) are made and written in one go.
 */
const loadState = (file: string): ServiceState => {
  let saved: Partial<ServiceState> = {}
  try {
    saved = JSON.parse(readFileSync(file, "utf8")) as ServiceState
  } catch {
    // No state yet: everything below is generated.
  }
  const state: ServiceState = {
    ...saved,
    password: saved.password ?? randomBytes(18).toString("base64url"),
    adminToken: saved.adminToken ?? randomBytes(24).toString("base64url"),
    widgetSecret: saved.widgetSecret ?? randomBytes(32).toString("base64url"),
    // Used only while registration is not open; kept either way, so turning it off again keeps the old token.
    registrationToken: saved.registrationToken ?? randomBytes(24).toString("base64url")
  }
  if (saved.password === undefined || saved.adminToken === undefined || saved.widgetSecret === undefined || saved.registrationToken === undefined) writeJsonAtomically(file, state)
  return state
}

/** The rendered URLs of the demo widgets in the demo room, by page name. */
const demoLinks = (hosted: ReadonlyArray<{ readonly id: string; readonly roomId?: string; readonly url: string }>, roomId: string) => {
  const links: Record<string, string> = {}
  for (const widget of DEMO_WIDGETS) {
    const found = hosted.find((w) => w.id === widget.id && w.roomId === roomId)
    if (found !== undefined) links[widget.id] = found.url
  }
  return links
}

/** `onProgress`: the crypto store's load and the first sync, for the progress line (progress-line.ts). */
export const serve = async (config: ServiceConfig, log: Logger, hooks: { readonly onProgress?: OnLoadProgress } = {}): Promise<RunningService> => {
  const dataDir = prepareDataDir(config.dataDir)
  const stateFile = join(dataDir, "service.json")
  let state = loadState(stateFile)
  const widgetSecret = state.widgetSecret!
  const cleanups: Array<() => Promise<void> | void> = []
  const stopAll = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup()
      } catch (error) {
        log("warn", "error while stopping", { error: String(error) })
      }
    }
    cleanups.length = 0
  }

  try {
    let embedded: EmbeddedHomeserver | undefined
    let baseUrl: string
    let rooms = config.rooms
    let auth: Parameters<typeof connectHomeserver>[0]["auth"]
    /** The demo room and the host account's token, when `npm start` runs its demo (no rooms configured). */
    let demo: { readonly roomId: string; readonly accessToken: string } | undefined
    if (config.homeserver.kind === "embedded") {
      const { openRegistration } = config.embeddedHomeserver
      try {
        embedded = await startEmbeddedHomeserver({
          dataDir: join(dataDir, "homeserver"),
          port: state.homeserverPort ?? 0,
          ...(openRegistration ? { registration: "open" as const } : { registrationToken: state.registrationToken! }),
          ...(config.embeddedHomeserver.turn === undefined ? {} : { turn: config.embeddedHomeserver.turn }),
          ...(config.embeddedHomeserver.rtcTransports === undefined ? {} : { rtcTransports: config.embeddedHomeserver.rtcTransports })
        })
      } catch (error) {
        throw new StartupError(`cannot start the embedded homeserver on port ${state.homeserverPort ?? 0}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
      }
      cleanups.push(() => embedded!.close())
      baseUrl = embedded.baseUrl
      const port = Number(new URL(baseUrl).port)
      if (port !== state.homeserverPort) writeJsonAtomically(stateFile, (state = { ...state, homeserverPort: port }))
      const account = await embedded.ensureUser("widgethost", state.password)
      if (rooms.length === 0) {
        const demoRoom = await ensureDemoRoom(baseUrl, account.accessToken, state.demoRoom)
        if (demoRoom !== state.demoRoom) writeJsonAtomically(stateFile, (state = { ...state, demoRoom }))
        rooms = [demoRoom]
        demo = { roomId: demoRoom, accessToken: account.accessToken }
      }
      auth = { user: "widgethost", password: state.password }
      log("info", "embedded homeserver started", { url: baseUrl })
    } else {
      baseUrl = config.homeserver.url
      auth =
        config.homeserver.kind === "token"
          ? { accessToken: config.homeserver.accessToken, deviceId: config.homeserver.deviceId, ...(config.homeserver.userId === undefined ? {} : { userId: config.homeserver.userId }) }
          : { user: config.homeserver.user, password: config.homeserver.password, ...(config.homeserver.deviceId === undefined ? {} : { deviceId: config.homeserver.deviceId }) }
    }

    // Notified once the admin model exists (undecryptable reports before that still count and log).
    const healthChanged: { notify?: () => void } = {}
    const health = new HomeserverHealthRecorder(log, () => healthChanged.notify?.())
    let homeserver: MatrixHomeserver
    try {
      homeserver = await connectHomeserver({
        baseUrl,
        auth,
        dataDir: join(dataDir, "account"),
        retry: { maxAttempts: 2 },
        onUndecryptable: health.roomEvent,
        onToDeviceUndecryptable: health.toDevice,
        ...(hooks.onProgress === undefined ? {} : { onProgress: hooks.onProgress }),
        onError: (error) => log("debug", "homeserver adapter", { error: String(error) })
      })
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      throw new StartupError(`cannot reach the homeserver at ${baseUrl}: ${message}`)
    }
    cleanups.push(() => homeserver.stop())
    health.watch(() => homeserver.stats(), () => homeserver.syncHealth())
    const configuredKey = config.homeserver.kind === "embedded" ? undefined : config.homeserver.recoveryKey
    const deviceTrust = await establishDeviceTrust({
      homeserver,
      ...(embedded === undefined ? {} : { ownAccountPassword: state.password }),
      ...(configuredKey === undefined ? {} : { recoveryKey: configuredKey }),
      recoveryKeyFile: join(dataDir, "recovery-key.txt"),
      log
    })

    // Interactive verification from another of the account's devices (SAS emoji, in the console).
    const verification = await DeviceVerification.open({ e2ee: homeserver.e2ee, onError: (error) => log("warn", "device verification", { error: String(error) }) })
    cleanups.push(() => verification.close())
    verification.onChange(() => {
      const { flow, deviceSigned } = verification.status()
      if (flow !== null) log("info", `device verification ${flow.phase}`, { flowId: flow.flowId, otherDeviceId: flow.otherDeviceId, ...(flow.cancelled === null ? {} : { cancelled: flow.cancelled }), deviceSigned })
    })

    // Aliases become ids, rooms the account is not in are joined, each is checked readable.
    const resolved = await resolveRooms(homeserver.http, rooms).catch((error: unknown) => {
      throw new StartupError(error instanceof Error ? error.message : String(error))
    })
    rooms = resolved.rooms
    for (const widget of config.widgets) {
      if (widget.roomId !== undefined && !resolved.joined.has(widget.roomId))
        log("warn", `widget ${widget.id} names room ${widget.roomId}, which this account has not joined: it is hosted, but sees nothing of that room and cannot act in it`, {
          widgetId: widget.id,
          roomId: widget.roomId
        })
    }

    const approvals = new ApprovalQueue()
    const messages = new MessageLog({ logContent: config.logContent })
    const engine = createEngine({
      homeserver: fromEffectPort(homeserver),
      approver: approvals.approver,
      policy: config.policy,
      limits: { approvalTimeoutMs: config.approvalTimeoutMs },
      onReport: (sessionId, widgetId, report) => log("debug", "session report", { sessionId, widgetId, report }),
      onError: (error, where) => log("error", "embedder callback failed", { ...where, error: error instanceof Error ? error.message : String(error) })
    })
    cleanups.push(() => engine.stop())
    engine.setViewedRoom(rooms[0])

    // Stopping runs cleanups last-first: the transport closes first (1001 "going away" to every
    // widget), then the widget registry lets go of what is already closed.
    const registry: { widgets?: WidgetHost } = {}
    cleanups.push(() => registry.widgets?.close())
    // Closed after the transport (cleanups run last-first): the transport's last writes are journaled.
    const journal = DeliveryJournal.open(join(dataDir, "deliveries.jsonl"), { onError: (error) => log("error", "delivery journal", { error: String(error) }) })
    cleanups.push(() => journal.close())
    // The demo widgets' pages are served by the widget listener, so their origin is its origin.
    const listener: { url?: string } = {}
    const demoPages =
      demo === undefined
        ? undefined
        : await startDemoPages(() => listener.url ?? "").catch((error: unknown) => {
            throw new StartupError(`cannot bundle the demo widgets: ${error instanceof Error ? error.message : String(error)}`)
          })
    let transport: WebsocketTransport
    try {
      transport = await startOnStablePort(
        {
          host: config.listen.host,
          port: config.listen.port,
          ...(demoPages === undefined ? {} : { onHttpRequest: demoPages.handle }),
          ...(config.listen.tls === undefined ? {} : { tls: { cert: readFileSync(config.listen.tls.cert), key: readFileSync(config.listen.tls.key) } })
        },
        state.widgetPort,
        (from, error) => log("warn", `widget port ${from} is taken (${(error as NodeJS.ErrnoException).code}): widget URIs change, widgets cannot resume`)
      )
    } catch (error) {
      throw new StartupError(`cannot listen for widgets on ${config.listen.host}:${config.listen.port}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
    }
    cleanups.push(() => transport.close())
    listener.url = transport.url
    if (demo !== undefined) await ensureDemoWidgets(baseUrl, demo.accessToken, demo.roomId, transport.url.replace(/^ws/, "http"))
    const widgetPort = Number(new URL(transport.url).port)
    if (config.listen.port === 0 && widgetPort !== state.widgetPort) writeJsonAtomically(stateFile, (state = { ...state, widgetPort }))

    const adminModel = engineAdminModel({
      engine,
      widgets: () => registry.widgets?.list() ?? [],
      approvals,
      messages,
      ...(embedded === undefined ? {} : { createUser: embeddedUserCreator(embedded) }),
      identity: () => trustNow(deviceTrust, verification.status().deviceSigned),
      verification,
      homeserver: () => health.health(),
      blockWidget: (ref) => registry.widgets?.block(ref) ?? false,
      account: () => ({
        userId: homeserver.userId,
        deviceId: homeserver.deviceId,
        homeserver: baseUrl,
        demo: demo === undefined ? [] : DEMO_WIDGETS.flatMap((d) => registry.widgets?.list().filter((w) => w.id === d.id && w.roomId === demo.roomId).map((w) => ({ id: d.id, name: d.name, url: w.url })) ?? []),
        ...(embedded === undefined ? {} : { addUserCommand: addUserCommand(config.dataDir) }),
        registrationToken: embedded?.registrationToken ?? null
      })
    })
    const notify = adminModel.notify
    healthChanged.notify = () => notify({ kind: "homeserver" })
    verification.onChange(() => {
      notify({ kind: "verification" })
      notify({ kind: "identity" })
    })
    const host: HostTransports = { ...headlessHost, prefer: config.transports.prefer.filter((t) => headlessHost.supported.includes(t)) }
    const widgets = (registry.widgets = new WidgetHost({
      engine,
      transport,
      homeserver,
      host,
      baseUrl,
      client: config.client,
      onMessage: (sessionId, direction, message) => {
        messages.record(sessionId, direction, message)
        notify({ kind: "message", sessionId })
      },
      onChange: () => notify({ kind: "sessions" }),
      onSessionClosed: (sessionId) => messages.forget(sessionId),
      log: (level, message, fields) => log(level, message, fields),
      blocklist: new WidgetBlocklist(join(dataDir, "blocked-widgets.json")),
      tokenFor: (definition) => widgetToken(widgetSecret, definition),
      resume: {
        journal,
        source: { roomPositions: () => homeserver.roomPositions(), readMissed: (request) => readMissedEvents(homeserver, request) },
        ...(rooms[0] === undefined ? {} : { viewedRoom: rooms[0] })
      }
    }))

    homeserver.start()
    await widgets.start(rooms, config.widgets).catch((error: unknown) => {
      throw new StartupError(`cannot read the widgets of rooms ${rooms.join(", ")}: ${error instanceof Error ? error.message : String(error)}`)
    })

    const adminToken = config.admin.token ?? state.adminToken
    let admin: { url: string; close(): Promise<void> }
    try {
      admin = await startAdminServer({
        host: config.admin.host,
        port: config.admin.port,
        token: adminToken,
        model: adminModel
      })
    } catch (error) {
      throw new StartupError(`cannot start the admin server on ${config.admin.host}:${config.admin.port}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
    }
    cleanups.push(() => admin.close())

    const ready: ReadyLine = {
      ready: {
        homeserver: baseUrl,
        user_id: homeserver.userId,
        device_id: homeserver.deviceId,
        rooms,
        admin_url: admin.url,
        admin_token: adminToken,
        registration_token: embedded?.registrationToken ?? null,
        widgets: widgets.list().map((w) => ({ id: w.id, room_id: w.roomId ?? null, transport: w.transport, url: w.url })),
        ...(demo === undefined ? {} : { demo: demoLinks(widgets.list(), demo.roomId) })
      }
    }
    return { ready, engine, homeserver, ...(embedded === undefined ? {} : { embedded }), approvals, stop: stopAll }
  } catch (error) {
    await stopAll()
    throw error
  }
}
