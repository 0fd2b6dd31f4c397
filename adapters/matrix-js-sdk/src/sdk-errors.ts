/**
 * matrix-js-sdk's errors as the Promise port's: a homeserver's refusal (`MatrixError`, or an
 * `HTTPError` whose body was no Matrix error) becomes a {@link HomeserverErrorResponse}, which
 * the widget gets as `matrix_api_error`; everything else (a network failure, the SDK refusing
 * on its own) is passed on as it is, an error without an answer from the homeserver.
 */
import type { HomeserverErrorResponse } from "@widgethost/core"
import { HTTPError, MatrixError } from "matrix-js-sdk"

/** The response headers the Matrix spec defines for errors. */
const specErrorHeaders = ["retry-after"] as const

const headersOf = (headers: Headers | undefined): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const name of specErrorHeaders) {
    const value = headers?.get(name)
    if (typeof value === "string") out[name] = value
  }
  return out
}

/**
 * What the port rejects with for `error`, thrown by the SDK.
 *
 * @example
 * await client.sendEvent(roomId, type, content).catch((e: unknown) => { throw portError(e) })
 */
export const portError = (error: unknown): unknown => {
  if (error instanceof MatrixError && typeof error.httpStatus === "number") {
    const response: HomeserverErrorResponse = {
      status: error.httpStatus,
      errcode: error.errcode ?? "M_UNKNOWN",
      ...(typeof error.data.error === "string" ? { error: error.data.error } : {}),
      headers: headersOf(error.httpHeaders),
      ...(error.url === undefined ? {} : { url: error.url }),
      body: error.data
    }
    return response
  }
  if (error instanceof HTTPError && typeof error.httpStatus === "number") {
    const response: HomeserverErrorResponse = { status: error.httpStatus, errcode: "M_UNKNOWN", error: error.message, headers: headersOf(error.httpHeaders) }
    return response
  }
  return error
}

/** Runs one SDK call; its failure rejects as {@link portError} says. */
export const viaSdk = async <A>(run: () => Promise<A>): Promise<A> => {
  try {
    return await run()
  } catch (error) {
    throw portError(error)
  }
}

/** Whether the SDK's error is the homeserver's 404 `M_UNRECOGNIZED` (an endpoint it does not have). */
export const isUnrecognised = (error: unknown): boolean => error instanceof MatrixError && error.httpStatus === 404 && error.errcode === "M_UNRECOGNIZED"
