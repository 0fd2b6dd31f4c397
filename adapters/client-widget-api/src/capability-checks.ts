/**
 * The reference's capability questions (`hasCapability`, `canSendRoomEvent`, …) answered from what
 * the engine approved. The event capabilities are matched by matrix-widget-api's own
 * `WidgetEventCapability`, so a client asking the drop-in gets the reference's reading of the
 * same strings (the engine enforces its own reading, which agrees on every well-formed one).
 */
import { EventDirection, WidgetEventCapability } from "matrix-widget-api"

const ANY_ROOM = "*"

/** One approved set and the event capabilities parsed from it, rebuilt only when the set changes. */
export class CapabilityChecks {
  private approved: ReadonlySet<string> = new Set()
  private events: ReadonlyArray<WidgetEventCapability> = []
  private source: ReadonlyArray<string> = []

  /** Takes the engine's approved list (a new array whenever it changes). */
  update(approved: ReadonlyArray<string>): void {
    if (approved === this.source) return
    this.source = approved
    this.approved = new Set(approved)
    this.events = WidgetEventCapability.findEventCapabilities(approved)
  }

  has(capability: string): boolean {
    return this.approved.has(capability)
  }

  canUseRoomTimeline(roomId: string): boolean {
    return this.has(`org.matrix.msc2762.timeline:${ANY_ROOM}`) || this.has(`org.matrix.msc2762.timeline:${roomId}`)
  }

  canSendRoomEvent(eventType: string, msgtype: string | null): boolean {
    return this.events.some((e) => e.matchesAsRoomEvent(EventDirection.Send, eventType, msgtype))
  }

  canSendStateEvent(eventType: string, stateKey: string): boolean {
    return this.events.some((e) => e.matchesAsStateEvent(EventDirection.Send, eventType, stateKey))
  }

  canSendToDeviceEvent(eventType: string): boolean {
    return this.events.some((e) => e.matchesAsToDeviceEvent(EventDirection.Send, eventType))
  }

  canReceiveRoomEvent(eventType: string, msgtype: string | null): boolean {
    return this.events.some((e) => e.matchesAsRoomEvent(EventDirection.Receive, eventType, msgtype))
  }

  canReceiveStateEvent(eventType: string, stateKey: string | null): boolean {
    return this.events.some((e) => e.matchesAsStateEvent(EventDirection.Receive, eventType, stateKey))
  }

  canReceiveToDeviceEvent(eventType: string): boolean {
    return this.events.some((e) => e.matchesAsToDeviceEvent(EventDirection.Receive, eventType))
  }

  canReceiveRoomAccountData(eventType: string): boolean {
    return this.events.some((e) => e.matchesAsRoomAccountData(EventDirection.Receive, eventType))
  }
}
