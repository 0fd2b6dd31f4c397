/**
 * The service's configuration file (JSON), validated field by field so every mistake is named
 * with its path. Absent file: the embedded homeserver in `./.widgethost`.
 */
import { readFileSync } from "node:fs"
import { type ApprovalPolicy, type PolicyRule, type TransportName, transportsOf } from "@widgethost/core"
import { decodeRecoveryKey } from "@widgethost/homeserver-client"

export type HomeserverConfig =
  | { readonly kind: "embedded" }
  | { readonly kind: "token"; readonly url: string; readonly accessToken: string; readonly deviceId: string; readonly userId?: string; readonly recoveryKey?: string }
  | { readonly kind: "password"; readonly url: string; readonly user: string; readonly password: string; readonly deviceId?: string; readonly recoveryKey?: string }

export interface ConfiguredWidget {
  readonly id: string
  readonly roomId?: string
  readonly type: string
  readonly url: string
  readonly name?: string
  readonly data?: Readonly<Record<string, unknown>>
  readonly waitForIframeLoad?: boolean
  readonly transports?: ReadonlyArray<string>
  /** MSC3009's unstable spelling of `transports`, read when `transports` is absent. */
  readonly "org.matrix.msc3009.transports"?: ReadonlyArray<string>
}

/**
 * TURN credentials in coturn's REST scheme (`use-auth-secret`): for each request the embedded
 * homeserver mints `username = "<expiry unix seconds>:<user id>"` and
 * `password = base64(HMAC-SHA1(sharedSecret, username))`, which coturn checks with the same
 * secret; nothing per user is stored on either side.
 */
export interface TurnConfig {
  /** `turn:` / `turns:` URIs handed to clients. */
  readonly uris: ReadonlyArray<string>
  /** coturn's `static-auth-secret`. */
  readonly sharedSecret: string
  /** How long minted credentials last. Default 3600 (Synapse's `turn_user_lifetime`). */
  readonly ttlSeconds: number
}

/** Settings of the embedded homeserver; only meaningful when `homeserver` is absent. */
export interface EmbeddedHomeserverConfig {
  /**
   * `m.login.dummy` registration for anyone who can reach the port. The homeserver answers every
   * origin's CORS preflight (the spec requires it), so any web page could then create accounts.
   * Default false: registering needs the service's registration token (its ready line prints it).
   */
  readonly openRegistration: boolean
  /** Absent: `/voip/turnServer` answers `{}` (no TURN server), as Synapse does without `turn_uris`. */
  readonly turn?: TurnConfig
  /**
   * MatrixRTC transports (MSC4143) served at `/_matrix/client/v1/rtc/transports`, e.g.
   * `[{ "type": "livekit", "livekit_service_url": "https://livekit-jwt.example.org" }]`: where a
   * call widget such as Element Call finds its media server. Absent: that endpoint is 404.
   */
  readonly rtcTransports?: ReadonlyArray<{ readonly type: string } & Readonly<Record<string, unknown>>>
}

export interface ServiceConfig {
  readonly homeserver: HomeserverConfig
  readonly embeddedHomeserver: EmbeddedHomeserverConfig
  readonly dataDir: string
  /**
   * Rooms whose widgets are hosted, by id or alias (resolved and joined at start); empty with the
   * embedded homeserver means "the demo room".
   */
  readonly rooms: ReadonlyArray<string>
  readonly listen: { readonly host: string; readonly port: number; readonly tls?: { readonly cert: string; readonly key: string } }
  readonly admin: { readonly host: string; readonly port: number; readonly token?: string }
  readonly transports: { readonly prefer: ReadonlyArray<TransportName> }
  readonly policy: ApprovalPolicy
  /** Prompts nobody answers are denied after this long. */
  readonly approvalTimeoutMs: number
  readonly widgets: ReadonlyArray<ConfiguredWidget>
  readonly client: { readonly id: string; readonly theme: string; readonly language: string }
  /**
   * Show message contents and secrets in the console's message log and the service's logs.
   * Default false: they show as sizes and markers (log-redaction.ts). `--log-content` sets it.
   */
  readonly logContent: boolean
}

export class ConfigError extends Error {
  override readonly name = "ConfigError"
}

const defaults: ServiceConfig = {
  homeserver: { kind: "embedded" },
  embeddedHomeserver: { openRegistration: false },
  dataDir: ".widgethost",
  rooms: [],
  listen: { host: "127.0.0.1", port: 0 },
  admin: { host: "127.0.0.1", port: 0 },
  transports: { prefer: ["m.websockets"] },
  policy: { rules: [] },
  approvalTimeoutMs: 120_000,
  widgets: [],
  client: { id: "io.widgethost", theme: "light", language: "en" },
  logContent: false
}

type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v)

/** Reads one field with a type check; every complaint names the field's path. */
class Fields {
  constructor(private readonly value: Json, private readonly at: string) {}
  private fail(key: string, want: string): never {
    throw new ConfigError(`${this.at}${key}: expected ${want}, got ${JSON.stringify(this.value[key])}`)
  }
  known(keys: ReadonlyArray<string>): void {
    for (const key of Object.keys(this.value)) if (!keys.includes(key)) throw new ConfigError(`${this.at}${key}: unknown field (known: ${keys.join(", ")})`)
  }
  string(key: string, options: { nonEmpty?: boolean } = { nonEmpty: true }): string | undefined {
    const v = this.value[key]
    if (v === undefined) return undefined
    if (typeof v !== "string" || (options.nonEmpty === true && v.length === 0)) this.fail(key, "a non-empty string")
    return v
  }
  required(key: string): string {
    const v = this.string(key)
    if (v === undefined) throw new ConfigError(`${this.at}${key}: required`)
    return v
  }
  port(key: string): number | undefined {
    const v = this.value[key]
    if (v === undefined) return undefined
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 65_535) this.fail(key, "a port number 0-65535")
    return v
  }
  positive(key: string): number | undefined {
    const v = this.value[key]
    if (v === undefined) return undefined
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) this.fail(key, "a positive number")
    return v
  }
  boolean(key: string): boolean | undefined {
    const v = this.value[key]
    if (v === undefined) return undefined
    if (typeof v !== "boolean") this.fail(key, "true or false")
    return v
  }
  strings(key: string): ReadonlyArray<string> | undefined {
    const v = this.value[key]
    if (v === undefined) return undefined
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string" && s.length > 0)) this.fail(key, "an array of non-empty strings")
    return v as string[]
  }
  object(key: string): Fields | undefined {
    const v = this.value[key]
    if (v === undefined) return undefined
    if (!isObject(v)) this.fail(key, "an object")
    return new Fields(v, `${this.at}${key}.`)
  }
  raw(key: string): unknown {
    return this.value[key]
  }
  array(key: string): ReadonlyArray<Fields> | undefined {
    const v = this.value[key]
    if (v === undefined) return undefined
    if (!Array.isArray(v)) this.fail(key, "an array")
    return v.map((item, index) => {
      if (!isObject(item)) throw new ConfigError(`${this.at}${key}[${index}]: expected an object`)
      return new Fields(item, `${this.at}${key}[${index}].`)
    })
  }
}

/** `homeserver.recoveryKey`, or the first line of `homeserver.recoveryKeyFile`; checked (prefix, parity) here. */
const configuredRecoveryKey = (key: string | undefined, file: string | undefined): string | undefined => {
  if (key !== undefined && file !== undefined) throw new ConfigError("homeserver: give recoveryKey or recoveryKeyFile, not both")
  let value = key
  let at = "homeserver.recoveryKey"
  if (file !== undefined) {
    at = "homeserver.recoveryKeyFile"
    try {
      value = readFileSync(file, "utf8").trim()
    } catch (error) {
      throw new ConfigError(`${at}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`)
    }
  }
  if (value === undefined) return undefined
  try {
    decodeRecoveryKey(value)
  } catch (error) {
    throw new ConfigError(`${at}: not a recovery key (${error instanceof Error ? error.message : String(error)})`)
  }
  return value
}

const url = (value: string, at: string): string => {
  try {
    const parsed = new URL(value)
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error()
    return value.replace(/\/+$/, "")
  } catch {
    throw new ConfigError(`${at}: expected an http(s) URL, got ${JSON.stringify(value)}`)
  }
}

const transportNames: Record<string, TransportName> = {
  "m.websockets": "m.websockets",
  "org.matrix.msc3009.websockets": "m.websockets",
  "m.postmessage": "m.postmessage",
  "org.matrix.msc3009.postmessage": "m.postmessage"
}

/**
 * Validates a parsed configuration object.
 *
 * @example parseConfig({ rooms: ["!a:hs"], homeserver: { url: "https://hs", accessToken: "t", deviceId: "D" } })
 */
export const parseConfig = (input: unknown): ServiceConfig => {
  if (!isObject(input)) throw new ConfigError("configuration: expected a JSON object")
  const root = new Fields(input, "")
  root.known(["homeserver", "embeddedHomeserver", "dataDir", "rooms", "listen", "admin", "transports", "policy", "approvalTimeoutMs", "widgets", "client", "logContent"])

  let homeserver: HomeserverConfig = defaults.homeserver
  const hs = root.object("homeserver")
  if (hs !== undefined) {
    hs.known(["url", "accessToken", "deviceId", "userId", "user", "password", "recoveryKey", "recoveryKeyFile"])
    const base = url(hs.required("url"), "homeserver.url")
    // The account's secret storage recovery key (or a file holding it): the device signs itself with it.
    const recoveryKey = configuredRecoveryKey(hs.string("recoveryKey"), hs.string("recoveryKeyFile"))
    const withKey = recoveryKey === undefined ? {} : { recoveryKey }
    const accessToken = hs.string("accessToken")
    const user = hs.string("user")
    if (accessToken !== undefined && user !== undefined) throw new ConfigError("homeserver: give either accessToken (with deviceId) or user and password, not both")
    if (accessToken !== undefined) {
      const userId = hs.string("userId")
      homeserver = { kind: "token", url: base, accessToken, deviceId: hs.required("deviceId"), ...(userId === undefined ? {} : { userId }), ...withKey }
    } else if (user !== undefined) {
      const deviceId = hs.string("deviceId")
      homeserver = { kind: "password", url: base, user, password: hs.required("password"), ...(deviceId === undefined ? {} : { deviceId }), ...withKey }
    } else throw new ConfigError("homeserver: needs accessToken and deviceId, or user and password")
  }

  const embedded = root.object("embeddedHomeserver")
  if (embedded !== undefined && hs !== undefined) throw new ConfigError("embeddedHomeserver: only applies without a homeserver section (the embedded homeserver); remove one of them")
  embedded?.known(["openRegistration", "turn", "rtcTransports"])
  const turnFields = embedded?.object("turn")
  turnFields?.known(["uris", "sharedSecret", "ttlSeconds"])
  let turn: TurnConfig | undefined
  if (turnFields !== undefined) {
    const uris = turnFields.strings("uris")
    if (uris === undefined || uris.length === 0) throw new ConfigError("embeddedHomeserver.turn.uris: required, a non-empty array of turn: or turns: URIs")
    uris.forEach((uri, index) => {
      // The client-server spec's pattern for these URIs.
      if (!/^turns?:/.test(uri)) throw new ConfigError(`embeddedHomeserver.turn.uris[${index}]: expected a turn: or turns: URI, got ${JSON.stringify(uri)}`)
    })
    const ttlSeconds = turnFields.positive("ttlSeconds") ?? 3600
    if (!Number.isInteger(ttlSeconds)) throw new ConfigError(`embeddedHomeserver.turn.ttlSeconds: expected a whole number of seconds, got ${ttlSeconds}`)
    turn = { uris, sharedSecret: turnFields.required("sharedSecret"), ttlSeconds }
  }
  const rtcTransports = embedded?.array("rtcTransports")?.map((entry, index) => {
    const type = entry.string("type")
    if (type === undefined) throw new ConfigError(`embeddedHomeserver.rtcTransports[${index}].type: required, a non-empty string (e.g. "livekit")`)
    // The other fields belong to the transport's own specification: passed on as written.
    return { ...(embedded?.raw("rtcTransports") as ReadonlyArray<Json>)[index], type }
  })
  const embeddedHomeserver: EmbeddedHomeserverConfig = {
    openRegistration: embedded?.boolean("openRegistration") ?? false,
    ...(turn === undefined ? {} : { turn }),
    ...(rtcTransports === undefined ? {} : { rtcTransports })
  }

  const rooms = root.strings("rooms") ?? defaults.rooms
  rooms.forEach((room, index) => {
    if (!/^[!#][^:]+:.+$/.test(room)) throw new ConfigError(`rooms[${index}]: expected a room id (!id:server) or alias (#alias:server), got ${JSON.stringify(room)}`)
  })

  const listen = root.object("listen")
  listen?.known(["host", "port", "tls"])
  const tls = listen?.object("tls")
  tls?.known(["cert", "key"])
  const admin = root.object("admin")
  admin?.known(["host", "port", "token"])
  const transports = root.object("transports")
  transports?.known(["prefer"])
  const prefer = (transports?.strings("prefer") ?? defaults.transports.prefer).map((name, index) => {
    const known = transportNames[name]
    if (known === undefined) throw new ConfigError(`transports.prefer[${index}]: unknown transport ${JSON.stringify(name)} (m.websockets or m.postmessage)`)
    return known
  })
  const policy = root.object("policy")
  policy?.known(["rules", "clientCapabilities"])
  const rules: PolicyRule[] = (policy?.array("rules") ?? []).map((rule, index) => {
    rule.known(["widgetId", "origin", "capability", "decision"])
    const decision = rule.required("decision")
    if (decision !== "approve" && decision !== "deny") throw new ConfigError(`policy.rules[${index}].decision: expected "approve" or "deny", got ${JSON.stringify(decision)}`)
    const widgetId = rule.string("widgetId")
    const origin = rule.string("origin")
    return { capability: rule.required("capability"), decision, ...(widgetId === undefined ? {} : { widgetId }), ...(origin === undefined ? {} : { origin }) }
  })
  const clientCapabilities = policy?.strings("clientCapabilities")
  const client = root.object("client")
  client?.known(["id", "theme", "language"])

  const widgets = (root.array("widgets") ?? []).map((widget): ConfiguredWidget => {
    widget.known(["id", "roomId", "type", "url", "name", "data", "waitForIframeLoad", "transports", "org.matrix.msc3009.transports"])
    const data = widget.raw("data")
    if (data !== undefined && !isObject(data)) throw new ConfigError(`widgets: data of ${String(widget.raw("id"))}: expected an object`)
    const roomId = widget.string("roomId")
    const name = widget.string("name")
    const waitForIframeLoad = widget.boolean("waitForIframeLoad")
    const list = widget.strings("transports")
    const unstableList = widget.strings("org.matrix.msc3009.transports")
    const id = widget.required("id")
    // The service is headless: it has no frame to post into, so websockets are the only transport
    // it can host a widget over. A declared widget without them is refused rather than listed
    // with transport "none" (the old behaviour: it looked hosted and never could be), and not
    // hosted over websockets anyway: a postMessage widget does not read `$matrix_websocket_uri`,
    // so it would never connect. The operator wrote this entry, so the operator can fix it now.
    // Room-state widgets are not ours to refuse; those stay listed as "none" with a warning.
    if (!transportsOf({ transports: list, "org.matrix.msc3009.transports": unstableList }).includes("m.websockets"))
      throw new ConfigError(
        `widgets: ${JSON.stringify(id)} does not offer websockets, the only transport this headless service serves; declare "transports": ["m.websockets"] (or "org.matrix.msc3009.websockets") if the widget speaks MSC3009 websockets`
      )
    return {
      id,
      type: widget.required("type"),
      url: widget.required("url"),
      ...(roomId === undefined ? {} : { roomId }),
      ...(name === undefined ? {} : { name }),
      ...(data === undefined ? {} : { data }),
      ...(waitForIframeLoad === undefined ? {} : { waitForIframeLoad }),
      ...(list === undefined ? {} : { transports: list }),
      ...(unstableList === undefined ? {} : { "org.matrix.msc3009.transports": unstableList })
    }
  })
  const ids = new Set<string>()
  for (const w of widgets) {
    if (ids.has(w.id)) throw new ConfigError(`widgets: duplicate id ${JSON.stringify(w.id)}`)
    ids.add(w.id)
  }

  const token = admin?.string("token")
  // The admin API refuses shorter tokens; saying so here names the field and stops before anything starts.
  if (token !== undefined && token.length < 16) throw new ConfigError(`admin.token: expected at least 16 characters, got ${token.length}`)
  return {
    homeserver,
    embeddedHomeserver,
    dataDir: root.string("dataDir") ?? defaults.dataDir,
    rooms,
    listen: {
      host: listen?.string("host") ?? defaults.listen.host,
      port: listen?.port("port") ?? defaults.listen.port,
      ...(tls === undefined ? {} : { tls: { cert: tls.required("cert"), key: tls.required("key") } })
    },
    admin: { host: admin?.string("host") ?? defaults.admin.host, port: admin?.port("port") ?? defaults.admin.port, ...(token === undefined ? {} : { token }) },
    transports: { prefer },
    policy: { rules, ...(clientCapabilities === undefined ? {} : { clientCapabilities }) },
    approvalTimeoutMs: root.positive("approvalTimeoutMs") ?? defaults.approvalTimeoutMs,
    widgets,
    client: { id: client?.string("id") ?? defaults.client.id, theme: client?.string("theme") ?? defaults.client.theme, language: client?.string("language") ?? defaults.client.language },
    logContent: root.boolean("logContent") ?? defaults.logContent
  }
}

/** Reads and validates a configuration file; absent path: the defaults. */
export const loadConfig = (path: string | undefined): ServiceConfig => {
  if (path === undefined) return defaults
  let text: string
  try {
    text = readFileSync(path, "utf8")
  } catch (error) {
    throw new ConfigError(`cannot read configuration ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new ConfigError(`configuration ${path} is not valid JSON: ${(error as Error).message}`)
  }
  return parseConfig(parsed)
}

export const defaultConfig = defaults
