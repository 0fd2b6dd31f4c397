/**
 * The router actor: owns every session actor, and fans homeserver traffic out to exactly the
 * sessions whose permissions and room scope allow it. Work per event follows the matching
 * sessions (the routing index), not the number of sessions.
 */
import { type Input, type Permissions, RoutingIndex, type RoomEvent, type SessionConfig, type ToDeviceEvent, type TurnServers } from "@widgethost/core"
import { type ActorRefFrom, assign, enqueueActions, setup, stopChild } from "xstate"
import { sessionMachine } from "./session-machine.ts"

export type SessionRef = ActorRefFrom<typeof sessionMachine>

export type RouterEvent =
  | { readonly type: "session.open"; readonly key: string; readonly config: SessionConfig; readonly opened: (ref: SessionRef) => void }
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
  readonly sessions: Map<string, SessionRef>
  /**
   * Mutable on purpose: it is the router's private index, rebuilt incrementally on every
   * subscription change; copying it per event would cost what the index exists to save.
   */
  readonly index: RoutingIndex<string>
}

export const routerMachine = setup({
  types: {} as { context: RouterContext; events: RouterEvent; input: RouterInput },
  actors: { session: sessionMachine }
}).createMachine({
  id: "widget-router",
  context: ({ input }) => ({ deliver: input.deliver, sessions: new Map(), index: new RoutingIndex<string>() }),
  on: {
    "session.open": {
      actions: assign(({ context, event, spawn }) => {
        const ref = spawn("session", { id: event.key, input: event.config })
        context.sessions.set(event.key, ref)
        event.opened(ref)
        return {}
      })
    },
    "session.stop": {
      actions: enqueueActions(({ context, event, enqueue }) => {
        const ref = context.sessions.get(event.key)
        context.sessions.delete(event.key)
        context.index.delete(event.key)
        if (ref !== undefined) enqueue(stopChild(ref))
      })
    },
    "session.subscribe": {
      actions: ({ context, event }) => {
        if (context.sessions.has(event.key)) context.index.set(event.key, event.permissions, event.homeRoom)
      }
    },
    "room.event": {
      actions: ({ context, event }) => {
        const input: Input = { _tag: "RoomEvent", event: event.event }
        for (const key of context.index.match(event.event)) context.deliver(key, input)
      }
    },
    "to-device": {
      actions: ({ context, event }) => {
        const input: Input = { _tag: "ToDevice", event: event.event }
        for (const key of context.index.matchToDevice(event.event.type)) context.deliver(key, input)
      }
    },
    "turn.servers": {
      actions: ({ context, event }) => {
        const input: Input = { _tag: "TurnServers", servers: event.servers }
        for (const key of event.keys) if (context.sessions.has(key)) context.deliver(key, input)
      }
    },
    "viewed-room": {
      actions: ({ context, event }) => {
        const input: Input = { _tag: "ViewedRoomChanged", roomId: event.roomId }
        for (const key of context.sessions.keys()) context.deliver(key, input)
      }
    }
  }
})
