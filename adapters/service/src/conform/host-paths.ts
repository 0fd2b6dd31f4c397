/**
 * The paths `conform host` drives: `xstate/graph`'s shortest paths through our session chart
 * (the oracle), with only what a widget can do as events, as the model test walks it
 * (test/model/session-machine.test.ts). A model state is the path that reaches it; each
 * transition replays the path on a fresh oracle, so the walk branches without copying a session.
 */
import type { ActorLogic, EventObject } from "xstate"
import { getShortestPaths } from "xstate/graph"
import type { Harness } from "./harness.ts"
import { HostOracle, STEERED_ACTIONS } from "./host-oracle.ts"
import { REQUEST_NAMES, sameStep, type Step } from "./widget-steps.ts"
import { uniqueShortestFirst } from "./path-findings.ts"

interface ModelState {
  readonly path: ReadonlyArray<Step>
  readonly oracle: HostOracle
}

type ModelEvent = Step & EventObject

/** Replays `path` on a fresh oracle. */
export const replay = (harness: Harness, path: ReadonlyArray<Step>): HostOracle => {
  const oracle = new HostOracle(harness)
  path.forEach((step, index) => oracle.play(step, index))
  return oracle
}

/** What the widget can do next: any request, or answer an open request of the exchange. */
export const stepsFrom = (oracle: HostOracle): Step[] => {
  if (oracle.done) return []
  const steps: Step[] = REQUEST_NAMES.map((name) => ({ kind: "request", name }))
  const open = new Set([...oracle.state.pendingToWidget.values()].map((p) => p.action).filter((action) => STEERED_ACTIONS.has(action)))
  for (const action of [...open].sort()) steps.push({ kind: "answer", action })
  return steps
}

/** Whether every step of `path` is one the widget could take where it stands (shrinking keeps only these). */
export const isValidPath = (harness: Harness, path: ReadonlyArray<Step>): boolean => {
  const oracle = new HostOracle(harness)
  return path.every((step, index) => {
    if (!stepsFrom(oracle).some((s) => sameStep(s, step))) return false
    oracle.play(step, index)
    return true
  })
}

/** The oracle state that matters for behaviour (never counters, else the walk never ends). */
const serializeState = ({ oracle }: ModelState): string => {
  const s = oracle.state
  return JSON.stringify([
    oracle.value,
    [...s.approved].sort(),
    [...s.requested].sort(),
    // Open requests of each action, clamped: answering one of two is a step of its own.
    [...s.pendingToWidget.values()].map((p) => p.action).sort().filter((action, i, all) => all.indexOf(action) > i - 2),
    s.contentLoaded,
    s.approval !== undefined
  ])
}

const modelLogic = (harness: Harness) =>
  ({
    config: {},
    getInitialSnapshot: () => ({ path: [], oracle: replay(harness, []) }),
    transition: (state: ModelState, event: ModelEvent) => {
      const path = [...state.path, event]
      return { path, oracle: replay(harness, path) }
    }
  }) as unknown as ActorLogic<ModelState & { status: "active"; output: undefined; error: undefined }, ModelEvent>

/**
 * The paths to drive, shortest first: one per reachable state (`states`), or each of those
 * extended by every step possible there (`transitions`, the default: every edge of the graph).
 */
export const hostPaths = (harness: Harness): ReadonlyArray<ReadonlyArray<Step>> => {
  const paths = getShortestPaths(modelLogic(harness), { events: (state: ModelState) => stepsFrom(state.oracle) as ModelEvent[], serializeState })
  // The events of each path's steps (its first step is xstate's own init event).
  const toStates = paths.map((p) => p.steps.map((s) => s.event as unknown as Step).filter((event) => "kind" in event))
  const chosen = harness.coverage === "states" ? toStates : toStates.flatMap((path) => stepsFrom(replay(harness, path)).map((step) => [...path, step]))
  return uniqueShortestFirst(chosen)
}
