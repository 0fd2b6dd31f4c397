import type { HomeserverStats, SyncHealth, ToDeviceUndecryptable, UndecryptableReport } from "@widgethost/homeserver-client"
import type { HomeserverHealth } from "./admin.ts"
import type { Logger } from "./log.ts"
import { scrubSecrets } from "./log-redaction.ts"

/**
 * What the service tells a person about its homeserver connection: the sync loop's counters and,
 * above all, the events it could not decrypt. An undecryptable room event is held for a while in
 * case its key arrives (the homeserver adapter's late-key hold); when the hold gives up, or the
 * key is known never to come (withheld, bad ciphertext), the adapter reports it here. Each report
 * becomes a log line, a count and an entry in a short list the console shows, so nothing that
 * could not be decrypted vanishes without a word. Widgets learn of them through `read_events`
 * (`io.widgethost.withheld`).
 */
export class HomeserverHealthRecorder {
  private readonly recent: Array<HomeserverHealth["recentUndecryptable"][number]> = []
  private toDeviceUndecryptable = 0
  private stats: (() => HomeserverStats) | undefined
  private sync: (() => SyncHealth) | undefined

  constructor(
    private readonly log: Logger,
    /** Called after each report, so the console refreshes its "Homeserver health". */
    private readonly changed: () => void = () => undefined,
    /** Reports kept for the console (the counters count them all). */
    private readonly keep = 20,
    private readonly now: () => number = Date.now
  ) {}

  /** The connection whose counters (and sync health: lag, backoff, errors) the health shows, once it is connected. */
  watch(stats: () => HomeserverStats, sync?: () => SyncHealth): void {
    this.stats = stats
    this.sync = sync
  }

  /** For `connectHomeserver`'s `onUndecryptable`. */
  readonly roomEvent = (report: UndecryptableReport): void => {
    const what =
      report.kind === "held-too-long"
        ? "a room event could not be decrypted in time; it is delivered later if its key still arrives"
        : report.kind === "evicted"
          ? "a room event that could not be decrypted was given up on"
          : "a room event cannot be decrypted"
    this.log("warn", what, { roomId: report.roomId, eventId: report.eventId, kind: report.kind, reason: report.reason })
    this.recent.push({ at: new Date(this.now()).toISOString(), ...report })
    if (this.recent.length > this.keep) this.recent.shift()
    this.changed()
  }

  /** For `connectHomeserver`'s `onToDeviceUndecryptable`. */
  readonly toDevice = (report: ToDeviceUndecryptable): void => {
    this.toDeviceUndecryptable += 1
    this.log("warn", "a to-device message could not be decrypted", { sender: report.sender, reason: report.reason })
    this.changed()
  }

  /** The console's "Homeserver health"; undefined before the connection is watched. */
  health(): HomeserverHealth | undefined {
    const stats = this.stats?.()
    if (stats === undefined) return undefined
    const sync = this.sync?.()
    return {
      // An error's text may carry what the homeserver echoed back (a URL with its query): scrubbed.
      connection: sync === undefined ? null : { ...sync, lastError: sync.lastError === null ? null : { ...sync.lastError, message: scrubSecrets(sync.lastError.message) } },
      syncs: stats.syncs,
      syncErrors: stats.syncErrors,
      held: stats.held,
      delivered: stats.delivered,
      decrypted: stats.decrypted,
      lateDelivered: stats.lateDelivered,
      undecryptable: stats.undecryptable,
      toDeviceUndecryptable: this.toDeviceUndecryptable,
      recentUndecryptable: [...this.recent].reverse()
    }
  }
}
