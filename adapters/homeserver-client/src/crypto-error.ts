import { HomeserverError } from "@widgethost/core"

/** A failure of the crypto layer, as the port reports it. */
export const cryptoError = (what: string, cause: unknown): HomeserverError =>
  cause instanceof HomeserverError ? cause : new HomeserverError({ message: `${what}: ${cause instanceof Error ? cause.message : String(cause)}` })
