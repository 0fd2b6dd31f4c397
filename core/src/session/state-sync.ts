/**
 * MSC2762 `update_state`: after a (re)negotiation grants receiving some state, the widget gets the
 * current values of all matching state in its rooms (an empty list when there are none, so it
 * knows loading finished), then only the entries that change. State changes that arrive while
 * the initial load is in flight are held and sent after it, so the widget never sees an old
 * value overwrite a newer one.
 */
import type { RoomEvent } from "../matrix.ts"
import { UPDATE_STATE_VERSIONS } from "../versions.ts"
import type { CallResult } from "./input.ts"
import { isServing, none } from "./state.ts"
import type { Stepper } from "./step.ts"

type StateKind = { readonly type: string; readonly stateKey?: string }

export const supportsUpdateState = (versions: ReadonlyArray<string> | undefined): boolean =>
  versions !== undefined && versions.some((v) => UPDATE_STATE_VERSIONS.includes(v))

/** Queues newly granted state kinds for loading and starts the load when it can. */
export const loadGrantedState = (s: Stepper, kinds: ReadonlyArray<StateKind>): void => {
  s.set({ stateToLoad: [...s.state.stateToLoad, ...kinds], heldState: s.state.heldState ?? [] })
  const asking = [...s.state.pendingToWidget.values()].some((p) => p.purpose === "versions")
  if (s.state.widgetVersions === undefined && !asking) s.sendRequest("supported_api_versions", {}, "versions")
  startStateLoad(s)
}

/** Starts the queued load once the widget's versions are known and no other load runs. */
export const startStateLoad = (s: Stepper): void => {
  const { state } = s
  if (!isServing(s.phase) || state.stateToLoad.length === 0 || state.widgetVersions === undefined) return
  if ([...state.gathers.values()].some((g) => g._tag === "State")) return
  if (!supportsUpdateState(state.widgetVersions)) {
    // Widgets without update_state get state changes as send_event, as the reference does.
    const held = state.heldState ?? []
    s.set({ stateToLoad: none, heldState: undefined })
    for (const event of held) s.sendRequest("send_event", event, "delivery")
    return
  }
  const wanted = state.stateToLoad
  s.set({ stateToLoad: none })
  const gather = s.nextSeq()
  if (state.permissions.allRooms) {
    s.putGather(gather, { _tag: "State", wanted, remaining: 1, events: [] })
    s.call({ _tag: "JoinedRooms" }, { _tag: "StateRooms", gather })
    return
  }
  readStateIn(s, gather, wanted, permittedRooms(s))
}

const permittedRooms = (s: Stepper): ReadonlyArray<string> => {
  const rooms = new Set(s.state.permissions.timelineRooms)
  if (s.state.homeRoom !== undefined) rooms.add(s.state.homeRoom)
  return [...rooms]
}

const readStateIn = (s: Stepper, gather: number, wanted: ReadonlyArray<StateKind>, rooms: ReadonlyArray<string>): void => {
  const remaining = rooms.length * wanted.length
  s.putGather(gather, { _tag: "State", wanted, remaining, events: [] })
  if (remaining === 0) return finishStateLoad(s, gather, [])
  for (const roomId of rooms) {
    for (const kind of wanted) {
      s.call({ _tag: "ReadState", roomId, type: kind.type, ...(kind.stateKey === undefined ? {} : { stateKey: kind.stateKey }) }, { _tag: "StatePart", gather })
    }
  }
}

/** The joined-room list for an `m.timeline:*` widget arrived: read state in each. */
export const onStateRooms = (s: Stepper, gather: number, result: CallResult): void => {
  const pending = s.state.gathers.get(gather)
  if (pending?._tag !== "State") return
  if (result._tag !== "Rooms") {
    if (result._tag === "Failed") s.report({ _tag: "CallFailed", request: "JoinedRooms", message: result.error.message })
    return readStateIn(s, gather, pending.wanted, permittedRooms(s))
  }
  readStateIn(s, gather, pending.wanted, [...new Set([...result.value, ...permittedRooms(s)])])
}

export const onStatePart = (s: Stepper, gather: number, result: CallResult): void => {
  const pending = s.state.gathers.get(gather)
  if (pending?._tag !== "State") return
  if (result._tag === "Failed") s.report({ _tag: "CallFailed", request: "ReadState", message: result.error.message })
  const { permissions, homeRoom } = s.state
  const arrived = result._tag === "State" ? result.value.filter((e) => permissions.mayReceive(e) && permissions.mayUseRoom(e.room_id, homeRoom)) : []
  const events = arrived.length === 0 ? pending.events : [...pending.events, ...arrived]
  if (pending.remaining > 1) return s.putGather(gather, { ...pending, remaining: pending.remaining - 1, events })
  finishStateLoad(s, gather, events)
}

const finishStateLoad = (s: Stepper, gather: number, events: ReadonlyArray<RoomEvent>): void => {
  s.putGather(gather, undefined)
  s.sendRequest("update_state", { state: events }, "delivery")
  const held = s.state.heldState ?? []
  if (s.state.stateToLoad.length > 0) {
    // Another grant came in meanwhile: keep holding until its load is done too.
    s.set({ heldState: held })
    return startStateLoad(s)
  }
  s.set({ heldState: undefined })
  if (held.length > 0) s.sendRequest("update_state", { state: held }, "delivery")
}

/** A live state change: pushed as update_state, or held while a load is in flight. */
export const deliverStateChange = (s: Stepper, event: RoomEvent): void => {
  if (s.state.heldState !== undefined) {
    s.set({ heldState: [...s.state.heldState, event] })
    return
  }
  if (supportsUpdateState(s.state.widgetVersions)) s.sendRequest("update_state", { state: [event] }, "delivery")
  else s.sendRequest("send_event", event, "delivery")
}
