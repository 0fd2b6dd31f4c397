/**
 * One session chart driven by hand, the way the engine runs it (`SessionCharts`, one timer
 * queue on a simulated clock), without the engine's edges: tests give it inputs and time and
 * read the commands it built, the delayed events it armed, cancelled and fired, and its state.
 */
import { type Command, createCoreCaches, type Input, type SessionConfig } from "@widgethost/core"
import { ChartSession, phaseOf, recordedSteps, SessionCharts, TimerQueue } from "@widgethost/engine"
import { SimulatedClock } from "xstate"
import { simulatedClock } from "@widgethost/testing"

export interface TimerTrace {
  readonly what: "armed" | "cancelled" | "fired"
  readonly id: string
}

export class ChartDriver {
  readonly clock = new SimulatedClock()
  readonly commands: Command[] = []
  readonly timerTrace: TimerTrace[] = []
  private readonly outbox: Command[] = []
  private readonly charts: SessionCharts
  readonly session: ChartSession

  constructor(config: SessionConfig, options: { readonly macrostepAlways?: boolean } = {}) {
    this.charts = new SessionCharts({
      // As createEngine runs its charts.
      recorded: recordedSteps,
      ...options,
      timers: new TimerQueue(simulatedClock(this.clock)),
      outbox: this.outbox,
      caches: createCoreCaches(),
      onDelayed: (session, event) => {
        this.charts.send(session, event)
        this.collect()
      },
      trace: (_key, what, id) => this.timerTrace.push({ what, id })
    })
    this.session = this.charts.open(new ChartSession("s"), { config })
  }

  /** One turn's inputs, as one event. */
  send(inputs: ReadonlyArray<Input>): void {
    this.charts.send(this.session, { type: "inputs", inputs })
    this.collect()
  }

  /** Lets `ms` of simulated time pass, in steps of at most `step` (timers fire as they fall due). */
  elapse(ms: number, step = 50): void {
    for (let left = ms; left > 0; left -= step) this.clock.increment(Math.min(step, left))
  }

  get state() {
    return this.session.snapshot.context.state
  }

  get value() {
    return this.session.snapshot.value
  }

  get phase() {
    return phaseOf(this.session.snapshot.value)
  }

  get done() {
    return this.session.snapshot.status === "done"
  }

  /** Ids of the delayed events armed now. */
  get armed(): ReadonlyArray<string> {
    return (this.session.timers ?? []).map((t) => t.id).sort()
  }

  private collect(): void {
    this.commands.push(...this.outbox)
    this.outbox.length = 0
  }
}
