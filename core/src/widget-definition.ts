import * as Result from "./result.ts"
import { TaggedError } from "./tagged-error.ts"
import { transportsOf } from "./transport-choice.ts"
import { isObject } from "./is-object.ts"

/**
 * A widget as the engine hosts it: parsed from room state (`m.widget`,
 * `im.vector.modular.widgets`), account data (`m.widgets`) or configuration.
 * Parsing and validation are added beside this type (see `parseWidgetDefinition`).
 */

/** Stable transport names (MSC3009); unstable `org.matrix.msc3009.*` names are normalised to these. */
export type TransportName = "m.postmessage" | "m.websockets"

export interface WidgetDefinition {
  readonly id: string
  /** `room`: acts in `roomId`. `account`: acts in whichever room the user is viewing. */
  readonly kind: "room" | "account"
  /** The widget's own room, for room widgets. */
  readonly roomId?: string
  readonly type: string
  /** The URL template, before `$matrix_*` variables are filled in. */
  readonly url: string
  readonly name?: string
  readonly data: Readonly<Record<string, unknown>>
  readonly creatorUserId?: string
  readonly waitForIframeLoad: boolean
  /** The transports the widget says it can use, in its order of preference, normalised. */
  readonly transports: ReadonlyArray<TransportName>
}

/** The room state event types that define room widgets: the MSC2764 name and the one clients deploy. */
export const WIDGET_STATE_EVENT_TYPES: ReadonlyArray<string> = ["m.widget", "im.vector.modular.widgets"]

/**
 * Why a definition was not accepted. `Removed` is not an error of the widget: it is how MSC2764
 * deletes a room widget (a new state event with empty content, or without `url`/`type`), so a
 * caller that tracks widgets drops the widget with that id when it sees it (see {@link isRemoval}).
 * Every other reason means "invalid: do not show it" (MSC2764 "Invalid room widgets MUST NOT be
 * shown"), and `detail` says what was wrong, for logs.
 */
export class InvalidWidget extends TaggedError("InvalidWidget")<{
  readonly reason: "Removed" | "WrongEventType" | "NotAnObject" | "MissingId" | "MissingType" | "MissingUrl" | "UnsafeUrl"
  readonly detail: string
}> {}

/** Where a definition comes from; see {@link parseWidgetDefinition}. */
export type WidgetSource =
  | {
      readonly source: "room-state"
      readonly event: {
        readonly type: string
        readonly state_key: string
        readonly content: unknown
        readonly room_id: string
        readonly sender: string
      }
    }
  | {
      /**
       * `account-data`: one entry of the `m.widgets` account data map, i.e. the `AccountWidget`
       * object `{ type: "m.widget", state_key, sender, content }` whose `content` holds the widget;
       * `id` is the map key. `config`: the widget definition itself.
       */
      readonly source: "account-data" | "config"
      readonly id?: string
      readonly content: unknown
      /** Pins the widget to this room (kind `room`); without it the widget is an account widget. */
      readonly roomId?: string
    }

type JsonObject = Readonly<Record<string, unknown>>


const nonEmptyString = (value: unknown): string | undefined =>
  typeof value === "string" && value.length > 0 ? value : undefined

const invalid = (reason: InvalidWidget["reason"], detail: string) => Result.fail(new InvalidWidget({ reason, detail }))

/** True when the failure means "this widget was deleted" rather than "this widget is broken". */
export const isRemoval = (error: InvalidWidget): boolean => error.reason === "Removed"

/**
 * Checks that a URL template may be rendered at all: it must parse as an absolute URL whose scheme
 * is `http:` or `https:` (MSC2764: other schemes, including a template variable as the scheme,
 * are invalid). Run it again on the rendered URL before showing the widget.
 *
 * @example isSafeWidgetUrl("https://example.org/w?room=$matrix_room_id") // true
 */
export const isSafeWidgetUrl = (url: string): boolean => {
  if (!URL.canParse(url)) return false
  const protocol = new URL(url).protocol
  return protocol === "http:" || protocol === "https:"
}

/**
 * Parses one widget definition from room state, `m.widgets` account data or configuration.
 *
 * Required: `id` (the state key for room state; else `id` given by the caller, the account data
 * entry's `state_key`, or `content.id`), `type` and `url` (strings; `url` must be `http(s)`).
 * Optional fields that have the wrong type are treated as absent, as MSC3009 does for
 * `transports`: `data` falls back to `{}`, `waitForIframeLoad` to `true`, `name` and
 * `creatorUserId` are dropped. `transports` (or `org.matrix.msc3009.transports`) is normalised
 * with {@link transportsOf}: the effective, never-empty list in the widget's order.
 * Empty room state content, or room state without `url` or `type`, yields `Removed`.
 *
 * @example
 * parseWidgetDefinition({ source: "room-state", event: { type: "m.widget", state_key: "w1",
 *   room_id: "!r:x", sender: "@a:x", content: { type: "m.custom", url: "https://w.example/" } } })
 * // Result.succeed({ id: "w1", kind: "room", roomId: "!r:x", type: "m.custom", ... })
 */
export const parseWidgetDefinition = (input: WidgetSource): Result.Result<WidgetDefinition, InvalidWidget> => {
  if (input.source === "room-state") {
    const { event } = input
    if (!WIDGET_STATE_EVENT_TYPES.includes(event.type)) {
      return invalid("WrongEventType", `state event type ${event.type} does not define widgets`)
    }
    if (!isObject(event.content) || Object.keys(event.content).length === 0) {
      return invalid("Removed", `widget ${event.state_key} has empty content`)
    }
    // MSC2764: a state event without `url` and/or `type` is how a room widget is removed.
    if (event.content["url"] === undefined || event.content["type"] === undefined) {
      return invalid("Removed", `widget ${event.state_key} has no ${event.content["url"] === undefined ? "url" : "type"}`)
    }
    const id = nonEmptyString(event.state_key)
    if (id === undefined) return invalid("MissingId", "room widget has an empty state_key")
    return fromContent(event.content, id, { kind: "room", roomId: event.room_id })
  }
  // An account data entry wraps the widget in `content`; configuration is the widget itself.
  const entry = input.source === "account-data" && isObject(input.content) ? input.content : undefined
  const content = entry === undefined ? input.content : entry["content"]
  if (!isObject(content)) return invalid("NotAnObject", `${input.source} widget is not a JSON object`)
  const id = nonEmptyString(input.id) ?? nonEmptyString(entry?.["state_key"]) ?? nonEmptyString(content["id"])
  if (id === undefined) return invalid("MissingId", `${input.source} widget has no id`)
  const where = input.roomId === undefined ? { kind: "account" as const } : { kind: "room" as const, roomId: input.roomId }
  return fromContent(content, id, where)
}

const fromContent = (
  content: JsonObject,
  id: string,
  where: { readonly kind: "room"; readonly roomId: string } | { readonly kind: "account" }
): Result.Result<WidgetDefinition, InvalidWidget> => {
  const type = nonEmptyString(content["type"])
  if (type === undefined) return invalid("MissingType", `widget ${id} has no type`)
  const url = nonEmptyString(content["url"])
  if (url === undefined) return invalid("MissingUrl", `widget ${id} has no url`)
  if (!isSafeWidgetUrl(url)) return invalid("UnsafeUrl", `widget ${id} url is not an http(s) URL`)
  const name = nonEmptyString(content["name"])
  const creatorUserId = nonEmptyString(content["creatorUserId"])
  return Result.succeed({
    id,
    ...where,
    type,
    url,
    ...(name === undefined ? {} : { name }),
    data: isObject(content["data"]) ? content["data"] : {},
    ...(creatorUserId === undefined ? {} : { creatorUserId }),
    waitForIframeLoad: content["waitForIframeLoad"] !== false,
    transports: transportsOf(content)
  })
}
