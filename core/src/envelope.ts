/**
 * The Widget API envelope (MSC2764 `WidgetApiRequest` / `WidgetApiResponse`).
 * Decoding lives in `decode.ts`; this file is the shape both directions share.
 */

export type Api = "fromWidget" | "toWidget"

export interface WidgetRequest {
  readonly api: Api
  readonly widgetId: string
  readonly requestId: string
  readonly action: string
  readonly data: Readonly<Record<string, unknown>>
}

/** A response is the request echoed back with `response` added. */
export interface WidgetResponse extends WidgetRequest {
  readonly response: unknown
}

export type WidgetMessage = WidgetRequest | WidgetResponse

export const isResponse = (message: WidgetMessage): message is WidgetResponse => "response" in message

/** The spec-shaped error response body: `{ error: { message, ...detail } }`. */
export interface ErrorBody {
  readonly error: { readonly message: string } & Readonly<Record<string, unknown>>
}
