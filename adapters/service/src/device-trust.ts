import { existsSync, readFileSync } from "node:fs"
import type { DeviceTrust } from "./admin.ts"
import { type BackupOutcome, ensureCrossSigned, ensureKeyBackup } from "@widgethost/homeserver-client"
import type { Logger } from "./log.ts"
import type { MatrixHomeserver } from "@widgethost/homeserver-client"

/**
 * The service's side of cross-signing: which account it may bootstrap (only one it created, whose
 * password it holds: the embedded homeserver's), where the recovery key goes, one log line, and
 * the console's "Device trust" line saying plainly whether other clients trust this device, what
 * to do with the recovery key, and whether room keys are backed up (server-side key backup, with
 * the recovery key: created when the account has none, restored into a new crypto store). A
 * failure here never stops the service: the device is then
 * unverified, and says so.
 */
export interface DeviceTrustOptions {
  readonly homeserver: Pick<MatrixHomeserver, "e2ee" | "http">
  /** The account's password when widgethost created the account (it may then bootstrap). */
  readonly ownAccountPassword?: string
  /** Where a new recovery key is written, and read back to sign a new device of the account. */
  readonly recoveryKeyFile: string
  /** The configured recovery key (`homeserver.recoveryKey`), for an account widgethost did not create. */
  readonly recoveryKey?: string
  readonly log: Logger
}

const MOVE_IT =
  "Move it somewhere safe now (a password manager, or paper), then delete the file; keep the file only if this host must sign itself again after losing its crypto store."

/**
 * Cross-signs the device where it can and returns what the console shows.
 *
 * @example const trust = await establishDeviceTrust({ homeserver, ownAccountPassword, recoveryKeyFile: ".widgethost/recovery-key.txt", log })
 */
export const establishDeviceTrust = async (options: DeviceTrustOptions): Promise<DeviceTrust> => {
  const trust = await crossSign(options)
  const backup = await keyBackup(options)
  return { ...trust, detail: `${trust.detail} ${backup}` }
}

/** Key backup after cross-signing (the recovery key written by a bootstrap is read back for it); one sentence for the console. */
const keyBackup = async (options: DeviceTrustOptions): Promise<string> => {
  const { log, recoveryKeyFile } = options
  const kept = existsSync(recoveryKeyFile) ? readFileSync(recoveryKeyFile, "utf8").trim() : undefined
  const recoveryKey = options.recoveryKey ?? (options.ownAccountPassword !== undefined ? kept : undefined)
  let outcome: BackupOutcome
  try {
    outcome = await ensureKeyBackup({ e2ee: options.homeserver.e2ee, http: options.homeserver.http, ...(recoveryKey === undefined ? {} : { recoveryKey }) })
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    log("warn", `key backup failed; room keys live only in this crypto store: ${reason}`, {})
    return `Key backup: off (${reason}).`
  }
  switch (outcome._tag) {
    case "Created":
      log("info", "key backup created: room keys are backed up to the homeserver", { version: outcome.version })
      return `Key backup: on (version ${outcome.version}, new).`
    case "Enabled":
      log("info", outcome.restored === undefined ? "key backup: room keys are backed up to the homeserver" : "key backup restored into a new crypto store", { version: outcome.version, ...outcome.restored })
      return outcome.restored === undefined ? `Key backup: on (version ${outcome.version}).` : `Key backup: on (version ${outcome.version}); ${outcome.restored.imported} of ${outcome.restored.total} room keys restored.`
    case "Unavailable":
      log("warn", `no key backup: ${outcome.reason}`, {})
      return `Key backup: off: a lost crypto store loses history (${outcome.reason}).`
  }
}

const crossSign = async (options: DeviceTrustOptions): Promise<DeviceTrust> => {
  const { log, recoveryKeyFile } = options
  const own = options.ownAccountPassword !== undefined
  const kept = own && existsSync(recoveryKeyFile) ? readFileSync(recoveryKeyFile, "utf8").trim() : undefined
  const recoveryKey = options.recoveryKey ?? kept
  try {
    const outcome = await ensureCrossSigned({
      e2ee: options.homeserver.e2ee,
      http: options.homeserver.http,
      ...(own ? { password: options.ownAccountPassword, recoveryKeyFile } : {}),
      ...(recoveryKey === undefined ? {} : { recoveryKey })
    })
    switch (outcome._tag) {
      case "Bootstrapped":
        log("info", "cross-signing set up: this device is signed; the recovery key was written once", { recoveryKeyFile: outcome.recoveryKeyFile })
        return { status: "cross-signed", detail: `New cross-signing identity; this device is signed by it. The recovery key is in ${recoveryKeyFile} (mode 0600). ${MOVE_IT}` }
      case "Trusted":
        log("info", outcome.restored ? "cross-signing: this device was signed with the keys from secret storage" : "cross-signing: this device is signed", {})
        return {
          status: "cross-signed",
          detail: own && existsSync(recoveryKeyFile) ? `This device is signed by the account's identity. The recovery key is still in ${recoveryKeyFile}. ${MOVE_IT}` : "This device is signed by the account's identity."
        }
      case "Unverified":
        log("warn", `this device is not cross-signed: ${outcome.reason}`, {})
        return {
          status: "unverified",
          detail: `This device is unverified until you verify it from another of your devices (Verify, below) or give the account's recovery key: clients that exclude unverified devices will not share keys with it or read what it sends (${outcome.reason}).`
        }
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    log("warn", `cross-signing failed; this device is unverified: ${reason}`, {})
    return { status: "unverified", detail: `This device is unverified: cross-signing failed (${reason}).` }
  }
}

/** The trust line now: a device verified interactively since start (verification.ts) is signed by its owner. */
export const trustNow = (atStart: DeviceTrust, signedSince: boolean): DeviceTrust =>
  atStart.status === "unverified" && signedSince
    ? { status: "cross-signed", detail: "This device was verified from another of the account's devices and is signed by the account's identity." }
    : atStart
