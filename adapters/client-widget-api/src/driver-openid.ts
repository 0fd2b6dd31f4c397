/**
 * MSC1960 through a driver's `askOpenID(observer)`, which both decides and hands over the token
 * (Allowed with a token, Blocked, or PendingUserConfirmation first). The engine asks its OpenID
 * approver, then the port for a token: the approver runs `askOpenID` and keeps the token it was
 * given for the port's next call; a later `get_openid` the engine allows without asking (the
 * decision holds for the document) runs `askOpenID` again for a fresh token.
 */
import type { OpenIdToken } from "@widgethost/core"
import { type IOpenIDUpdate, OpenIDRequestState, SimpleObservable, type WidgetDriver } from "matrix-widget-api"

type Outcome = { readonly allowed: true; readonly token: OpenIdToken } | { readonly allowed: false }

const isToken = (token: unknown): token is OpenIdToken =>
  typeof token === "object" && token !== null && typeof (token as { access_token?: unknown }).access_token === "string"

export class DriverOpenId {
  private kept: OpenIdToken | undefined

  constructor(private readonly driver: WidgetDriver) {}

  /** Runs the driver's flow to its end (Allowed or Blocked); a contract breach counts as Blocked. */
  private ask(): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const observer = new SimpleObservable<IOpenIDUpdate>((update) => {
        if (update.state === OpenIDRequestState.PendingUserConfirmation) return // the engine already told the widget "request"
        observer.close()
        resolve(update.state === OpenIDRequestState.Allowed && isToken(update.token) ? { allowed: true, token: update.token } : { allowed: false })
      })
      try {
        void Promise.resolve(this.driver.askOpenID(observer)).catch(() => resolve({ allowed: false }))
      } catch {
        resolve({ allowed: false })
      }
    })
  }

  /** The engine's OpenID approver: true when the driver allowed (its token kept for {@link token}). */
  async approve(): Promise<boolean> {
    const outcome = await this.ask()
    this.kept = outcome.allowed ? outcome.token : undefined
    return outcome.allowed
  }

  /** The port's `requestOpenIdToken`: the token the approval brought, else a fresh ask. */
  async token(): Promise<OpenIdToken> {
    const kept = this.kept
    this.kept = undefined
    if (kept !== undefined) return kept
    const outcome = await this.ask()
    if (!outcome.allowed) throw new Error("The client blocked the OpenID request")
    return outcome.token
  }
}
