/**
 * How a session runs: a `SessionRunner` takes batches of inputs, runs them through the core
 * reducer, keeps the session's timers on the clock and hands every other command to the engine.
 *
 * Two runners share that contract:
 * - `DirectSession` (the default): the reducer in owned mode (state updated in place), timers in
 *   the engine's timer queue on the clock. Nothing else runs per message, which is what lets one process fan events out to
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
import { Scheduled, TimerQueue } from "./timer-queue.ts"

export interface SessionRunner {
  /** Runs these inputs, in order, now. */
  readonly run: (inputs: ReadonlyArray<Input>) => void
  /** The session's state: read it, don't keep it (the direct runner updates it in place). */
  readonly state: () => SessionState
  readonly stop: () => void
}

/** What the runners of one engine share: one object for all sessions, so a session holds no closures. */
export interface SessionServices {
  readonly clock: Clock
  /** Every command except timers, in order, with the session's key. */
  readonly execute: (key: string, command: Command) => void
  /** A timer fired: queue `TimerFired` like any other input. */
  readonly onTimer: (key: string, timer: TimerName) => void
  /** Where direct sessions keep their timers (one clock timer for all of them). */
  readonly timers: TimerQueue
}

/** Services for runners on `clock`, with a timer queue of their own. */
export const sessionServices = (options: Omit<SessionServices, "timers">): SessionServices => ({ ...options, timers: new TimerQueue(options.clock) })

/** One armed timer of a direct session. */
class ArmedTimer extends Scheduled {
  constructor(
    readonly session: DirectSession,
    readonly name: TimerName
  ) {
    super()
  }
  fire(): void {
    this.session.timerFired(this)
  }
}

export class DirectSession implements SessionRunner {
  private current: SessionState
  /** Armed timers (at most one per name); none allocated while none is armed. */
  private armed: ArmedTimer[] | undefined

  constructor(
    config: SessionConfig,
    private readonly key: string,
    private readonly services: SessionServices
  ) {
    this.current = initialState(config)
  }

  run(inputs: ReadonlyArray<Input>): void {
    // Like the statechart's final state: a closed session takes no more input.
    if (this.current.phase === "closed") return
    const { state, commands } = reduceAll(this.current, inputs, { owned: true })
    this.current = state
    for (const command of commands) {
      switch (command._tag) {
        case "StartTimer": {
          const armed = (this.armed ??= [])
          let timer = armed.find((t) => t.name === command.timer)
          if (timer === undefined) armed.push((timer = new ArmedTimer(this, command.timer)))
          this.services.timers.schedule(timer, command.ms)
          break
        }
        case "CancelTimer":
          this.cancel(command.timer)
          break
        default:
          this.services.execute(this.key, command)
      }
    }
  }

  state(): SessionState {
    return this.current
  }

  stop(): void {
    for (const timer of this.armed ?? []) this.services.timers.cancel(timer)
    this.armed = undefined
  }

  /** Called by the timer queue. */
  timerFired(timer: ArmedTimer): void {
    this.forget(timer)
    this.services.onTimer(this.key, timer.name)
  }

  private cancel(name: TimerName): void {
    const timer = this.armed?.find((t) => t.name === name)
    if (timer === undefined) return
    this.services.timers.cancel(timer)
    this.forget(timer)
  }

  private forget(timer: ArmedTimer): void {
    const armed = this.armed
    if (armed === undefined) return
    armed.splice(armed.indexOf(timer), 1)
    if (armed.length === 0) this.armed = undefined
  }
}

export class XstateSession implements SessionRunner {
  private readonly actor: Actor<typeof sessionMachine>

  constructor(config: SessionConfig, key: string, services: SessionServices) {
    this.actor = createActor(sessionMachine, { input: config, clock: services.clock })
    this.actor.on("command", ({ command }) => services.execute(key, command))
    this.actor.start()
  }

  readonly run = (inputs: ReadonlyArray<Input>): void => {
    if (this.actor.getSnapshot().status === "active") this.actor.send({ type: "inputs", inputs })
  }

  readonly state = (): SessionState => this.actor.getSnapshot().context.session

  readonly stop = (): void => void this.actor.stop()
}
