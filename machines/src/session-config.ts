/**
 * Session configs with one prototype per engine: what every session of an engine has alike (its
 * policy, limits, features, what its client serves) lives on a frozen prototype made once, so a
 * session's config holds only its own fields. A thousand idle sessions share one copy of the rest.
 */
import type { SessionConfig } from "@widgethost/core"

/** The fields every session of one engine has alike. */
export type SharedSessionConfig = Pick<SessionConfig, "policy" | "limits" | "openIdApprover" | "client" | "features">

/** The fields of one session. */
export interface OwnSessionConfig {
  readonly widgetId: string
  readonly kind: SessionConfig["kind"]
  readonly homeRoom: string | undefined
  readonly waitForIframeLoad: boolean
  readonly origin: string | undefined
  readonly fileEncoding: SessionConfig["fileEncoding"]
}

/** Makes an engine's session configs: each a small object of its own fields over the engine's frozen prototype. */
export const sessionConfigs = (shared: SharedSessionConfig): ((own: OwnSessionConfig) => SessionConfig) => {
  // A class, so V8 sizes its instances to exactly these six fields (slack tracking).
  class Config {
    declare readonly widgetId: string
    declare readonly kind: SessionConfig["kind"]
    declare readonly homeRoom: string | undefined
    declare readonly waitForIframeLoad: boolean
    declare readonly origin: string | undefined
    declare readonly fileEncoding: SessionConfig["fileEncoding"]
    constructor(own: OwnSessionConfig) {
      const self = this as { -readonly [K in keyof OwnSessionConfig]: OwnSessionConfig[K] }
      self.widgetId = own.widgetId
      self.kind = own.kind
      self.homeRoom = own.homeRoom
      self.waitForIframeLoad = own.waitForIframeLoad
      self.origin = own.origin
      self.fileEncoding = own.fileEncoding
    }
  }
  Object.setPrototypeOf(Config.prototype, Object.freeze({ ...shared }))
  Object.freeze(Config.prototype)
  return (own) => new Config(own) as unknown as SessionConfig
}
