/**
 * The router actor: knows every open session, and fans homeserver traffic out to exactly the
 * sessions whose permissions and room scope allow it. Work per event follows the matching
 * sessions (the routing index), not the number of sessions. Sessions are registered by key, not
 * spawned as statechart children: spawning copies the children table, which made opening N
 * sessions cost O(N²).
 */
import { type Input, type Permissions, RoutingIndex, type RoomEvent, type ToDeviceEvent, type TurnServers } from "@widgethost/core"
import { setup } from "xstate"

export type RouterEvent =
  | { readonly type: "session.open"; readonly key: string }
  | { readonly type: "session.stop"; readonly key: string }
  | { readonly type: "session.subscribe"; readonly key: string; readonly permissions: Permissions; readonly homeRoom: string | undefined }
  | { readonly type: "room.event"; readonly event: RoomEvent }
  | { readonly type: "to-device"; readonly event: ToDeviceEvent }
  | { readonly type: "turn.servers"; readonly keys: ReadonlyArray<string>; readonly servers: Pick<TurnServers, "uris" | "username" | "password"> }
  | { readonly type: "viewed-room"; readonly roomId: string | undefined }

export interface RouterInput {
  /** Hands an input to a session's inbox (the engine batches what one session gets per turn). */
  readonly deliver: (key: string, input: Input) => void
}

export interface RouterContext extends RouterInput {
  readonly sessions: Set<string>
  /**
   * Mutable on purpose: it is the router's private index, rebuilt incrementally on every
   * subscription change; copying it per event would cost what the index exists to save.
   */
  readonly index: RoutingIndex<string>
}

type Handler<T extends RouterEvent["type"]> = (context: RouterContext, event: Extract<RouterEvent, { readonly type: T }>) => void

/** What the router does with each event. The statechart and the direct router both run exactly these. */
export const routerActions: { readonly [T in RouterEvent["type"]]: Handler<T> } = {
  "session.open": (context, event) => void context.sessions.add(event.key),
  "session.stop": (context, event) => {
    context.sessions.delete(event.key)
    context.index.delete(event.key)
  },
  "session.subscribe": (context, event) => {
    if (context.sessions.has(event.key)) context.index.set(event.key, event.permissions, event.homeRoom)
  },
  "room.event": (context, event) => {
    const input: Input = { _tag: "RoomEvent", event: event.event }
    for (const key of context.index.match(event.event)) context.deliver(key, input)
  },
  "to-device": (context, event) => {
    const input: Input = { _tag: "ToDevice", event: event.event }
    for (const key of context.index.matchToDevice(event.event.type)) context.deliver(key, input)
  },
  "turn.servers": (context, event) => {
    const input: Input = { _tag: "TurnServers", servers: event.servers }
    for (const key of event.keys) if (context.sessions.has(key)) context.deliver(key, input)
  },
  "viewed-room": (context, event) => {
    const input: Input = { _tag: "ViewedRoomChanged", roomId: event.roomId }
    for (const key of context.sessions) context.deliver(key, input)
  }
}

const routerContext = (input: RouterInput): RouterContext => ({ deliver: input.deliver, sessions: new Set(), index: new RoutingIndex<string>() })

const run = ({ context, event }: { readonly context: RouterContext; readonly event: RouterEvent }): void =>
  (routerActions[event.type] as Handler<RouterEvent["type"]>)(context, event)

export const routerMachine = setup({
  // Not unnecessary: xstate infers the machine's context, events and input from this assertion.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  types: {} as { context: RouterContext; events: RouterEvent; input: RouterInput }
}).createMachine({
  id: "widget-router",
  context: ({ input }) => routerContext(input),
  on: {
    "session.open": { actions: run },
    "session.stop": { actions: run },
    "session.subscribe": { actions: run },
    "room.event": { actions: run },
    "to-device": { actions: run },
    "turn.servers": { actions: run },
    "viewed-room": { actions: run }
  }
})

/** How the engine talks to its router, whichever way it runs. */
export interface Router {
  send(event: RouterEvent): void
  stop(): void
}

/**
 * The router without the statechart: the same actions, called directly (the engine's default).
 * The router has a single state, so the statechart adds nothing but its step, a few microseconds
 * per event: at one widget that was a tenth of a delivery, and three steps per session's life.
 * Its actions only hand inputs to inboxes, so a direct call never re-enters it.
 */
export class DirectRouter implements Router {
  private readonly context: RouterContext
  constructor(input: RouterInput) {
    this.context = routerContext(input)
  }
  send(event: RouterEvent): void {
    run({ context: this.context, event })
  }
  stop(): void {}
}
