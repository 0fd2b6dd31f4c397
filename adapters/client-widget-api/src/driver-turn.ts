/**
 * MSC3846 TURN servers from a driver's `getTurnServers()` generator, for the engine's one TURN
 * poller. The driver yields fresh credentials whenever the previous ones expire and says nothing
 * of their lifetime; the poller asks again `ttl` after each answer. So each answer says a
 * one-second ttl, and the next ask waits on the generator: the poller is always waiting for the
 * driver's next credentials, which reach the widget the moment the driver yields them.
 */
import type { TurnServers } from "@widgethost/core"
import type { ITurnServer, WidgetDriver } from "matrix-widget-api"
import { callDriver } from "./driver-errors.ts"

/** The lifetime each answer claims, in seconds (see the header: the real one is the driver's). */
const ASK_AGAIN_SECONDS = 1

export class DriverTurnFeed {
  private generator: AsyncGenerator<ITurnServer> | undefined

  constructor(private readonly driver: WidgetDriver) {}

  /** The driver's next credentials; the first call starts its generator. */
  next(): Promise<TurnServers> {
    return callDriver(this.driver, "TURN servers not available", async () => {
      this.generator ??= this.driver.getTurnServers()
      const { done, value } = (await this.generator.next()) as IteratorResult<ITurnServer, unknown>
      if (done === true) {
        this.generator = undefined
        throw new Error("Client refuses to provide any TURN servers")
      }
      return { uris: value.uris, username: value.username, password: value.password, ttl: ASK_AGAIN_SECONDS }
    })
  }

  /** Lets the driver clean up (its generator's `finally`), as the reference's unwatch does. */
  stop(): void {
    const generator = this.generator
    this.generator = undefined
    void generator?.return(undefined).catch(() => undefined)
  }
}
