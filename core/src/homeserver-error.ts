import { TaggedError } from "./tagged-error.ts"

/**
 * A failed homeserver call, shaped so it can be passed through to the widget unchanged as the
 * `matrix_api_error` of an error response (the shape matrix-widget-api defines).
 */
export class HomeserverError extends TaggedError("HomeserverError")<{
  /** Human-readable summary; becomes the widget-facing `error.message`. */
  readonly message: string
  /** Present when the homeserver answered: status, the spec-defined headers, url and JSON body. */
  readonly http?: {
    readonly status: number
    /** Only headers the Matrix spec defines for the error (e.g. `retry-after` on 429). */
    readonly headers: Readonly<Record<string, string>>
    readonly url: string
    readonly body: { readonly errcode: string; readonly error?: string } & Readonly<Record<string, unknown>>
  }
}> {}

/** The widget-facing `matrix_api_error` object, or undefined when the homeserver never answered. */
export const matrixApiError = (error: HomeserverError) =>
  error.http === undefined
    ? undefined
    : {
        http_status: error.http.status,
        http_headers: error.http.headers,
        url: error.http.url,
        response: error.http.body
      }
