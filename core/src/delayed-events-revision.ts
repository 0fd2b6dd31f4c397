/**
 * Which MSC4140 (delayed events) revision a homeserver speaks, learned the same way by every
 * homeserver port. `/versions` tells part of it: `org.matrix.msc4140.stable` means the accepted
 * text's endpoints (`PUT /_matrix/client/v3/rooms/{roomId}/delayed_event/{eventType}/{txnId}`,
 * `POST /_matrix/client/v1/delayed_events/{delay_id}/{action}`). `org.matrix.msc4140` alone is
 * shared by two revisions: the 2025 one deployed servers (Synapse) speak, a query parameter on
 * `/send` and `/state` with the management action in the body, and the 2026 text under its
 * unstable prefix (`/_matrix/client/unstable/org.matrix.msc4140/rooms/…/delayed_event/…`). A
 * server of the newer one ignores the query parameter and would send the event at once, so the
 * two are told apart before anything is scheduled: one `PUT` to the unstable endpoint in a room
 * that cannot exist, with an empty body, which no server can schedule (`delay_ms` and `content`
 * are required). 404 (or 405) `M_UNRECOGNIZED` means the endpoint does not exist (the 2025
 * revision); any other refusal of the request means it does; a failure of the server (no answer,
 * 429, 5xx) says nothing and is raised. Learned once per port, asked again after a failure.
 *
 * The ports differ only in how they ask (their own HTTP client), so they pass that in.
 */

export type DelayedEventsRevision = "endpoint-stable" | "endpoint" | "query-parameter"

export const MSC4140_UNSTABLE_PREFIX = "/_matrix/client/unstable/org.matrix.msc4140"

/** The room the probe names: one that cannot exist, so the probe never touches a real room. */
export const MSC4140_PROBE_ROOM = "!msc4140-probe:invalid"

/** How the probe's `PUT` was refused: its HTTP status (undefined when no answer came) and errcode, and the error as the port raised it. */
export interface ProbeRefusal {
  readonly status: number | undefined
  readonly errcode: unknown
  readonly error: unknown
}

export interface DelayedEventsProbe {
  /** Whether `/versions` lists `org.matrix.msc4140.stable` and `org.matrix.msc4140`. */
  readonly versions: () => Promise<{ readonly stable: boolean; readonly unstable: boolean }>
  /**
   * `PUT {MSC4140_UNSTABLE_PREFIX}/rooms/{MSC4140_PROBE_ROOM}/delayed_event/m.room.message/{txnId}`
   * with `{}`, without retries: undefined when the server took it, else its refusal.
   */
  readonly tryEndpoint: () => Promise<ProbeRefusal | undefined>
}

/** What a refusal of the probe says; throws the port's error when it says nothing. */
export const revisionFromProbe = (refusal: ProbeRefusal | undefined): DelayedEventsRevision => {
  if (refusal === undefined) return "endpoint"
  const { status, errcode } = refusal
  if ((status === 404 || status === 405) && errcode === "M_UNRECOGNIZED") return "query-parameter"
  if (status === undefined || status === 429 || status >= 500) throw refusal.error
  return "endpoint"
}

/** The revision the server speaks (`undefined`: no MSC4140 at all), learned at the first call and again after a failed one. */
export const learnDelayedEventsRevision = (probe: DelayedEventsProbe): (() => Promise<DelayedEventsRevision | undefined>) => {
  let learned: Promise<DelayedEventsRevision | undefined> | undefined
  return () =>
    (learned ??= (async () => {
      const { stable, unstable } = await probe.versions()
      if (stable) return "endpoint-stable" as const
      return unstable ? revisionFromProbe(await probe.tryEndpoint()) : undefined
    })().catch((error: unknown) => {
      learned = undefined
      throw error
    }))
}
