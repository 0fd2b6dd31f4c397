/**
 * Lifecycle events of a session, for the embedding client: phase changes, the approved set
 * changing, the close and its reason, and failures of the client's own callbacks. The engine
 * watches a session only once someone listens (a session's `on`, or the engine's `onLifecycle`):
 * a session nobody listens to costs nothing per event, not even a comparison.
 */
import type { Phase } from "@widgethost/core"
import type { EngineFault } from "./engine.ts"

export interface LifecycleEvents {
  /** The session chart entered another phase. */
  readonly phase: { readonly type: "phase"; readonly phase: Phase; readonly previous: Phase }
  /**
   * The approved capabilities changed: they grew, or went back to none for a new document in the
   * frame. `denied` holds everything denied in the session.
   */
  readonly capabilities: {
    readonly type: "capabilities"
    readonly requested: ReadonlyArray<string>
    readonly approved: ReadonlyArray<string>
    readonly denied: ReadonlyArray<string>
  }
  /** The session closed, for `reason`; nothing follows. */
  readonly closed: { readonly type: "closed"; readonly reason: string }
  /** A callback of the client failed for this session (what `onError` is told). */
  readonly error: { readonly type: "error"; readonly fault: EngineFault["fault"]; readonly error: unknown }
}

export type LifecycleEvent = LifecycleEvents[keyof LifecycleEvents]

export type LifecycleListener<K extends keyof LifecycleEvents> = (event: LifecycleEvents[K]) => void

/** What the engine needs to know of a session to tell what changed. */
export interface Observed {
  readonly phase: Phase
  readonly requested: ReadonlyArray<string>
  readonly approved: ReadonlyArray<string>
  readonly denied: ReadonlyArray<string>
}

/**
 * One watched session: its listeners and what it looked like when last observed (the approved
 * list is replaced, never written in place, so a changed set is a different array).
 */
export class SessionWatch {
  private readonly listeners = new Map<keyof LifecycleEvents, Array<(event: never) => void>>()

  constructor(
    private last: Observed,
    /** The engine-wide listener (`onLifecycle`), told after the session's own. */
    private readonly everyone: ((event: LifecycleEvent) => void) | undefined,
    /** A listener threw: reported, never re-emitted as an `error` event (no loops). */
    private readonly failed: (error: unknown) => void
  ) {}

  on<K extends keyof LifecycleEvents>(type: K, listener: LifecycleListener<K>): () => void {
    let list = this.listeners.get(type)
    if (list === undefined) this.listeners.set(type, (list = []))
    list.push(listener)
    return () => {
      const at = list.indexOf(listener)
      if (at >= 0) list.splice(at, 1)
    }
  }

  /** Compares the session with how it was, and tells what changed: phase first, then capabilities. */
  observe(now: Observed): void {
    const last = this.last
    this.last = now
    if (now.phase !== last.phase) this.emit({ type: "phase", phase: now.phase, previous: last.phase })
    if (now.approved !== last.approved) this.emit({ type: "capabilities", requested: now.requested, approved: now.approved, denied: now.denied })
  }

  /** Tells every listener of the event's type (a copy of the list: one may unsubscribe meanwhile). */
  emit(event: LifecycleEvent): void {
    for (const listener of [...(this.listeners.get(event.type) ?? [])]) this.tell(listener as (event: LifecycleEvent) => void, event)
    if (this.everyone !== undefined) this.tell(this.everyone, event)
  }

  private tell(listener: (event: LifecycleEvent) => void, event: LifecycleEvent): void {
    try {
      listener(event)
    } catch (error) {
      this.failed(error)
    }
  }
}
