/**
 * What the fan-out, round-trip and negotiation scenarios share about the reference and the
 * host-only rows:
 *
 * - each reference build runs twice per cycle on the same host: with the console a no-op
 *   (logging off) and with Element Web's rageshake hook on it (logging on, see console-hook.ts);
 * - a host-only row is the same scenario with the scripted widget side (widget-sides.ts): each
 *   measured round's time per operation minus that of the floor (the same scripted widget and
 *   transport, no engine) measured in the same cycle, median over the rounds. What is left is the
 *   host's own µs per operation. Host-only rounds and their floors run on the process's CPU
 *   clock (see {@link onCpuClock}): on a machine shared by many, wall time also counts the time
 *   other processes held the cores, which does not cancel out in a difference.
 */
import { type Contestant, median, type Row, type Samples, warmupOf } from "./harness.ts"
import { rageshakeConsole, withLogging } from "./console-hook.ts"
import { type ReferenceBuild, sideName } from "./hosts.ts"
import { HOST_ORIGIN } from "./plan.ts"
import { REFERENCE_TWIN_NAME } from "./reference-twin.ts"

export const REFERENCE_BUILDS: ReadonlyArray<ReferenceBuild> = ["matrix-widget-api", "matrix-widget-api (src)"]

/** The comparator's name in the rows: the lib/ build keeps its short name, the twin says what it is. */
const labelOf = (build: ReferenceBuild) => (build === "matrix-widget-api" ? "matrix-widget-api" : REFERENCE_TWIN_NAME)

export const loggingOn = (name: string): string => `${name}, logging on`

/** The widget side's own log lines (sent to the host's origin) belong to the iframe's console. */
const fromWidgetRealm = (first: unknown) => typeof first === "string" && first.startsWith(`[PostmessageTransport] Sending object to ${HOST_ORIGIN}`)

/** One logger per scenario; its line count goes into the detail (a check that logging was on). */
export const referenceLogger = () => rageshakeConsole(fromWidgetRealm)

/**
 * A reference host's two contestants: logging off and on. `makeRound` is called once for each
 * (a round may keep state, such as its calibrated event count).
 */
export const bothLoggings = (name: string, makeRound: () => () => Promise<number>, logger: ReturnType<typeof referenceLogger>): Contestant[] => [
  { name, round: makeRound() },
  { name: loggingOn(name), round: withLogging(logger, makeRound()) }
]

/** The end-to-end rows against the reference with its logging on (the logging-off rows stay as they were). */
export const loggingRows = (samples: Samples, row: Omit<Row, "against" | "warmup" | "target">, value: (name: string) => number): Row[] =>
  REFERENCE_BUILDS.map((build) => ({
    ...row,
    against: { name: loggingOn(labelOf(build)), value: value(loggingOn(build)) },
    warmup: warmupOf(samples, "widgethost", loggingOn(build))
  }))

/**
 * `round` with its sample moved from the wall clock to this process's CPU clock (user + system):
 * a rate is divided, a duration multiplied, by the share of the round's wall time the process
 * spent on a core. (On an idle machine the share is about 1.)
 */
export const onCpuClock =
  (round: () => Promise<number>, sample: "rate" | "duration") =>
  async (): Promise<number> => {
    const cpu0 = process.cpuUsage()
    const wall0 = performance.now()
    const value = await round()
    const wallMs = performance.now() - wall0
    const cpu = process.cpuUsage(cpu0)
    const share = (cpu.user + cpu.system) / 1000 / wallMs
    return sample === "rate" ? value / share : value * share
  }

/** A floor's name on the CPU clock (the host-only rows' floor; the wall-clock one stays for the end-to-end rows). */
export const cpuClocked = (name: string): string => `${name}, CPU clock`

/** µs of host work per operation in each measured round: the round minus its own floor. */
export const hostOnlyCosts = (samples: Samples, name: string, floor: string, microsPerOp: (sample: number) => number): number[] => {
  const floors = samples.get(floor) ?? []
  return (samples.get(name) ?? []).map((sample, r) => microsPerOp(sample) - microsPerOp(floors[r] ?? Number.NaN))
}

export interface HostOnlySpec {
  readonly scenario: string
  readonly metric: string
  /** The floor contestant's name. */
  readonly floor: string
  /** A round's sample as µs per operation (1e6 / rate, or ms × 1000 / widgets). */
  readonly microsPerOp: (sample: number) => number
  /** The target against the src/ twin with logging off. */
  readonly twinTarget?: Row["target"]
  readonly detail?: Row["detail"]
}

/** The host-only rows: ours against each reference build, logging off and on. */
export const hostOnlyRows = (samples: Samples, spec: HostOnlySpec): Row[] => {
  const ours = sideName("widgethost", "scripted")
  const cost = (name: string) => hostOnlyCosts(samples, name, spec.floor, spec.microsPerOp)
  const perRound = Object.fromEntries([ours, ...REFERENCE_BUILDS.flatMap((b) => [sideName(b, "scripted"), loggingOn(sideName(b, "scripted"))])].map((name) => [name, cost(name)]))
  const detail = { ...spec.detail, floor: spec.floor, hostMicrosPerRound: perRound }
  const variants = [...REFERENCE_BUILDS.map((build) => ({ build, logging: false })), ...REFERENCE_BUILDS.map((build) => ({ build, logging: true }))]
  return variants.map(({ build, logging }) => {
    const contestant = logging ? loggingOn(sideName(build, "scripted")) : sideName(build, "scripted")
    const target = !logging && build === "matrix-widget-api (src)" ? spec.twinTarget : undefined
    return {
      scenario: spec.scenario,
      metric: spec.metric,
      unit: "µs",
      ours: median(perRound[ours]!),
      against: { name: logging ? loggingOn(labelOf(build)) : labelOf(build), value: median(perRound[contestant]!) },
      better: "lower",
      ...(target === undefined ? {} : { target }),
      warmup: warmupOf(samples, ours, contestant),
      detail
    }
  })
}
