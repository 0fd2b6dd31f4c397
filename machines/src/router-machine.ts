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

export const routerMachine = setup({
  types: {} as { context: RouterContext; events: RouterEvent; input: RouterInput }
}).createMachine({
  id: "widget-router",
  context: ({ input }) => ({ deliver: input.deliver, sessions: new Set(), index: new RoutingIndex<string>() }),
  on: {
    "session.open": {
      actions: ({ context, event }) => void context.sessions.add(event.key)
    },
    "session.stop": {
      actions: ({ context, event }) => {
        context.sessions.delete(event.key)
        context.index.delete(event.key)
      }
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
        for (const key of context.sessions) context.deliver(key, input)
      }
    }
  }
})
