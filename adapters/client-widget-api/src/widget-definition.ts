/**
 * matrix-widget-api's `Widget` as the engine's {@link WidgetDefinition}. The reference host has
 * no idea of room or account widgets: every widget acts in the room the client says it views
 * (`setViewedRoomId`; Element Web sets a room widget's own room once). So the drop-in opens every
 * widget as an account widget, which follows the viewed room, and the client's calls decide.
 */
import type { WidgetDefinition } from "@widgethost/core"
import type { Widget } from "matrix-widget-api"

/**
 * The definition the drop-in opens its session with.
 *
 * @example definitionOf(new Widget({ id: "w", creatorUserId: "@a:x", type: "m.custom", url: "https://w.example/" })).kind // "account"
 */
export const definitionOf = (widget: Widget): WidgetDefinition => ({
  id: widget.id,
  kind: "account",
  type: widget.type,
  url: widget.templateUrl,
  ...(widget.name === null ? {} : { name: widget.name }),
  data: widget.rawData,
  creatorUserId: widget.creatorUserId,
  waitForIframeLoad: widget.waitForIframeLoad,
  transports: ["m.postmessage"]
})
