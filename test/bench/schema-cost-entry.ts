/**
 * The hot action's request as a schema, the fastest honest one: the envelope, `type` and
 * `state_key` checked, `content` opaque. `schema-cost.ts` times it and bundles it beside the
 * browser entry to weigh it.
 */
import * as Schema from "effect/Schema"

export const SendEventRequest = Schema.Struct({
  api: Schema.Literal("fromWidget"),
  widgetId: Schema.String,
  requestId: Schema.String,
  action: Schema.Literals(["send_event", "org.matrix.msc2876.send_event"]),
  data: Schema.Struct({ type: Schema.String, state_key: Schema.optionalKey(Schema.String), room_id: Schema.optionalKey(Schema.String), content: Schema.Unknown })
})
export const decodeSendEventRequest = Schema.decodeUnknownResult(SendEventRequest)
