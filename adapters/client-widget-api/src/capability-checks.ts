/**
 * The reference's capability questions (`hasCapability`, `canSendRoomEvent`, …) answered from what
 * the engine approved, by the engine's own reading of the capabilities (`compilePermissions`): the
 * answers agree with what the engine then enforces, stable `m.*` names included (the reference
 * reads only the `org.matrix.msc2762.*` / `msc3819` spellings, so it says "no" to a widget
 * approved for `m.send.event:m.room.message`).
 */
import { compilePermissions, type Permissions } from "@widgethost/core"

/** One approved set and its compiled permissions, recompiled only when the set changes. */
export class CapabilityChecks {
  private approved: ReadonlySet<string> = new Set()
  private permissions: Permissions = compilePermissions([])
  private source: ReadonlyArray<string> | undefined

  /** Takes the engine's approved list (a new array whenever it changes). */
  update(approved: ReadonlyArray<string>): void {
    if (approved === this.source) return
    this.source = approved
    this.approved = new Set(approved)
    this.permissions = compilePermissions(approved)
  }

  has(capability: string): boolean {
    return this.approved.has(capability)
  }

  canUseRoomTimeline(roomId: string): boolean {
    return this.permissions.allRooms || this.permissions.timelineRooms.has(roomId)
  }

  canSendRoomEvent(eventType: string, msgtype: string | null): boolean {
    return this.permissions.maySend({ type: eventType, content: msgtype === null ? {} : { msgtype } })
  }

  canSendStateEvent(eventType: string, stateKey: string): boolean {
    return this.permissions.maySend({ type: eventType, state_key: stateKey })
  }

  canSendToDeviceEvent(eventType: string): boolean {
    return this.permissions.maySendToDevice(eventType)
  }

  canReceiveRoomEvent(eventType: string, msgtype: string | null): boolean {
    return this.permissions.mayReceive({ type: eventType, content: msgtype === null ? {} : { msgtype } })
  }

  /** `null`: any state key, which only an unrestricted capability allows (as in the reference). */
  canReceiveStateEvent(eventType: string, stateKey: string | null): boolean {
    return stateKey === null ? this.permissions.mayRead({ type: eventType, stateKey: true }) : this.permissions.mayReceive({ type: eventType, state_key: stateKey })
  }

  canReceiveToDeviceEvent(eventType: string): boolean {
    return this.permissions.mayReceiveToDevice(eventType)
  }

  canReceiveRoomAccountData(eventType: string): boolean {
    return this.permissions.mayReadRoomAccountData(eventType)
  }
}
