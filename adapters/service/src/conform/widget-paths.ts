/**
 * The paths `conform widget` drives: `xstate/graph`'s shortest paths through the host side's
 * steps (see host-steps.ts), each extended by every step a host could take there, so every edge
 * of the graph is driven once. A model state is the path that reaches it; what matters of it is
 * whether the exchange has started and whether the widget was told its approval.
 */
import type { ActorLogic, EventObject } from "xstate"
import { getShortestPaths } from "xstate/graph"
import { type HostStep, hostStepsFrom } from "./host-steps.ts"
import { uniqueShortestFirst } from "./path-findings.ts"

interface ModelState {
  readonly path: ReadonlyArray<HostStep>
}

type ModelEvent = HostStep & EventObject

const serializeState = ({ path }: ModelState): string => JSON.stringify([path.length > 0, path.some((step) => step.name === "notify_capabilities")])

const modelLogic = {
  config: {},
  getInitialSnapshot: () => ({ path: [] }),
  transition: (state: ModelState, event: ModelEvent) => ({ path: [...state.path, { name: event.name }] })
} as unknown as ActorLogic<ModelState & { status: "active"; output: undefined; error: undefined }, ModelEvent>

/** Every path to drive, shortest first, none twice. */
export const widgetPaths = (): ReadonlyArray<ReadonlyArray<HostStep>> => {
  const events = (state: ModelState) => hostStepsFrom(state.path).map((step) => ({ type: step.name, ...step })) as ModelEvent[]
  // Each path's steps' events (its first is xstate's own init event, which names no step).
  const toStates = getShortestPaths(modelLogic, { events, serializeState }).map((p) => p.steps.flatMap((s) => (typeof (s.event as Partial<ModelEvent>).name === "string" ? [{ name: s.event.name }] : [])))
  return uniqueShortestFirst(toStates.flatMap((path) => hostStepsFrom(path).map((step) => [...path, step])))
}
