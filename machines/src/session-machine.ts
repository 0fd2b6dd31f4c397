/**
 * One widget session as an xstate machine. The core reducer decides everything; the machine
 * names the phases, runs timers on the actor clock (simulated in tests) and emits every other
 * command for the edges to execute (`actor.on("command", …)`).
 */
import { type Command, type Input, type Phase, reduceAll, type SessionConfig, type SessionState, initialState, type TimerName } from "@widgethost/core"
import { enqueueActions, setup } from "xstate"

/**
 * `inputs` carries every input that arrived since the session last ran, in arrival order: under
 * load one transition serves many messages, so the statechart's fixed cost per event is paid per
 * batch, not per message. Folding is exactly reducing one input after another.
 */
export type SessionEvent =
  | { readonly type: "inputs"; readonly inputs: ReadonlyArray<Input> }
  | { readonly type: "timer"; readonly timer: TimerName }

export type SessionEmitted = { readonly type: "command"; readonly command: Command }

const phases: ReadonlyArray<Phase> = ["loading", "negotiating", "ready", "renegotiating", "closed"]

/** Every state follows `session.phase` at once, so the machine's state always equals the reducer's phase. */
const follow = (self: Phase) =>
  phases.filter((p) => p !== self).map((phase) => ({ guard: { type: "phaseIs" as const, params: { phase } }, target: phase }))

export const sessionMachine = setup({
  // Not unnecessary: xstate infers the machine's context, events, emitted events and input from this assertion.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  types: {} as {
    context: { session: SessionState }
    events: SessionEvent
    emitted: SessionEmitted
    input: SessionConfig
  },
  actions: {
    step: enqueueActions(({ context, event, enqueue }) => {
      const inputs: ReadonlyArray<Input> = event.type === "timer" ? [{ _tag: "TimerFired", timer: event.timer }] : event.inputs
      const { state, commands } = reduceAll(context.session, inputs)
      enqueue.assign({ session: state })
      for (const command of commands) {
        switch (command._tag) {
          case "StartTimer":
            enqueue.cancel(command.timer)
            enqueue.raise({ type: "timer", timer: command.timer }, { id: command.timer, delay: command.ms })
            break
          case "CancelTimer":
            enqueue.cancel(command.timer)
            break
          default:
            enqueue.emit({ type: "command", command })
        }
      }
    })
  },
  guards: {
    phaseIs: ({ context }, params: { phase: Phase }) => context.session.phase === params.phase
  }
}).createMachine({
  id: "widget-session",
  context: ({ input }) => ({ session: initialState(input) }),
  initial: "loading",
  on: {
    inputs: { actions: "step" },
    timer: { actions: "step" }
  },
  states: {
    loading: { always: follow("loading") },
    negotiating: { always: follow("negotiating") },
    ready: { always: follow("ready") },
    renegotiating: { always: follow("renegotiating") },
    closed: { type: "final" }
  }
})
