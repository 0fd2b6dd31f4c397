/**
 * What a driver method's failure becomes on its way to the widget. The reference answers
 * `{ error: { message: <its own words>, ...driver.processError(e) } }`: the driver's own message
 * is never shown (it may say anything about the client), only what `processError` chose to
 * express, typically a `matrix_api_error`. The drop-in keeps that rule: a `matrix_api_error` from
 * `processError` becomes a {@link HomeserverErrorResponse} (the engine hands it to the widget as
 * `matrix_api_error`), anything else an `Error` with the reference's own words.
 */
import type { HomeserverErrorResponse } from "@widgethost/core"
import type { WidgetDriver } from "matrix-widget-api"

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> => typeof value === "object" && value !== null && !Array.isArray(value)

/** `processError`'s `matrix_api_error` as the port's error response, or undefined. */
const asErrorResponse = (details: unknown): HomeserverErrorResponse | undefined => {
  const api = isRecord(details) ? details["matrix_api_error"] : undefined
  if (!isRecord(api) || typeof api["http_status"] !== "number" || !isRecord(api["response"])) return undefined
  const response = api["response"]
  const errcode = typeof response["errcode"] === "string" ? response["errcode"] : "M_UNKNOWN"
  const headers = isRecord(api["http_headers"]) ? (api["http_headers"] as Readonly<Record<string, string>>) : {}
  return {
    status: api["http_status"],
    errcode,
    ...(typeof response["error"] === "string" ? { error: response["error"] } : {}),
    headers,
    url: typeof api["url"] === "string" ? api["url"] : "",
    body: response
  }
}

/**
 * The value a port method rejects with when `driver` failed with `error`; `words` is what the
 * reference tells the widget for this action ("Error sending event", …).
 *
 * @example driverFailure(driver, new Error("secret"), "Error sending event") // Error("Error sending event")
 */
export const driverFailure = (driver: WidgetDriver, error: unknown, words: string): HomeserverErrorResponse | Error => {
  let details: unknown
  try {
    details = driver.processError(error)
  } catch {
    details = undefined // a broken processError must not turn one failure into a crash
  }
  return asErrorResponse(details) ?? new Error(words)
}

/** Runs one driver call; a synchronous throw counts as a rejection (the reference's drivers throw "not implemented"). */
export const callDriver = async <A>(driver: WidgetDriver, words: string, run: () => Promise<A> | A): Promise<A> => {
  try {
    return await run()
  } catch (error) {
    // A HomeserverErrorResponse is what a PromiseHomeserverPort rejects with for the widget's matrix_api_error.
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    throw driverFailure(driver, error, words)
  }
}
