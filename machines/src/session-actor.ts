/**
 * How a session runs: a `SessionRunner` takes batches of inputs, runs them through the core
 * reducer, keeps the session's timers on the clock and hands every other command to the engine.
 *
 * Two runners share that contract:
 * - `DirectSession` (the default): the reducer in owned mode (state updated in place), timers on
 *   the clock. Nothing else runs per message, which is what lets one process fan events out to
 *   thousands of widgets.
 * - `XstateSession`: the same reducer inside the `sessionMachine` statechart actor, with delayed
 *   events on the actor clock. Its states name the phases; it is the executable model the
 *   model-based tests walk. It costs a statechart step and a snapshot per batch.
 * A property test drives both with the same inputs and requires identical commands and states.
 */
import { type Command, initialState, type Input, reduceAll, type SessionConfig, type SessionState, type TimerName } from "@widgethost/core"
import { type Actor, createActor } from "xstate"
import type { Clock } from "./clock.ts"
import { sessionMachine } from "./session-machine.ts"

export interface SessionRunner {
  /** Runs these inputs, in order, now. */
  readonly run: (inputs: ReadonlyArray<Input>) => void
  /** The session's state: read it, don't keep it (the direct runner updates it in place). */
  readonly state: () => SessionState
  readonly stop: () => void
}

export interface RunnerOptions {
  readonly config: SessionConfig
  readonly clock: Clock
  /** The session's key, passed back to `execute` and `onTimer` (shared functions, no closures per session). */
  readonly key: string
  /** Every command except timers, in order. */
  readonly execute: (key: string, command: Command) => void
  /** A timer fired: queue `TimerFired` like any other input. */
  readonly onTimer: (key: string, timer: TimerName) => void
}

export class DirectSession implements SessionRunner {
  private current: SessionState
  /** Armed timers; created on first use. */
  private timers: Map<TimerName, unknown> | undefined
  /** The options minus the config (which lives on in the state): shared functions, no copy. */
  private readonly options: Omit<RunnerOptions, "config">

  constructor({ config, ...options }: RunnerOptions) {
    this.current = initialState(config)
    this.options = options
  }

  run(inputs: ReadonlyArray<Input>): void {
    // Like the statechart's final state: a closed session takes no more input.
    if (this.current.phase === "closed") return
    const { state, commands } = reduceAll(this.current, inputs, { owned: true })
    this.current = state
    for (const command of commands) {
      switch (command._tag) {
        case "StartTimer": {
          this.cancel(command.timer)
          const timer = command.timer
          ;(this.timers ??= new Map()).set(
            timer,
            this.options.clock.setTimeout(() => {
              this.timers?.delete(timer)
              this.options.onTimer(this.options.key, timer)
            }, command.ms)
          )
          break
        }
        case "CancelTimer":
          this.cancel(command.timer)
          break
        default:
          this.options.execute(this.options.key, command)
      }
    }
  }

  state(): SessionState {
    return this.current
  }

  stop(): void {
    for (const timer of [...(this.timers?.keys() ?? [])]) this.cancel(timer)
  }

  private cancel(timer: TimerName): void {
    const handle = this.timers?.get(timer)
    if (handle === undefined) return
    this.options.clock.clearTimeout(handle)
    this.timers?.delete(timer)
  }
}

export class XstateSession implements SessionRunner {
  private readonly actor: Actor<typeof sessionMachine>

  constructor(options: RunnerOptions) {
    this.actor = createActor(sessionMachine, { input: options.config, clock: options.clock })
    this.actor.on("command", ({ command }) => options.execute(options.key, command))
    this.actor.start()
  }

  readonly run = (inputs: ReadonlyArray<Input>): void => {
    if (this.actor.getSnapshot().status === "active") this.actor.send({ type: "inputs", inputs })
  }

  readonly state = (): SessionState => this.actor.getSnapshot().context.session

  readonly stop = (): void => void this.actor.stop()
}
