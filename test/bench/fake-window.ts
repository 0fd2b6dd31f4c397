/**
 * Just enough of a browser's windows for both engines, so that both pay the same transport:
 * `postMessage` structured-clones the message (what a browser does) and dispatches it to the
 * target window's `message` listeners in a new task (`setImmediate`, one per message). As in a
 * browser, every listener on a window sees every message posted to it: the host page has one
 * window, where every host-side listener hears every widget. matrix-widget-api registers one
 * listener per widget (each ClientWidgetApi's transport); our adapter registers one per host
 * window, which finds the widget's attachment by `event.source`.
 *
 * matrix-widget-api binds to globals (`ClientWidgetApi` listens on `globalThis`, `WidgetApi`
 * posts to `globalThis.parent` and listens on `globalThis`); {@link asGlobalWindow} points those
 * at a fake window while such an object is built and started.
 */

/** A DOM listener: a function, or an object with `handleEvent` (our postMessage adapter registers one). */
export type MessageListener = ((event: MessageEvent) => void) | { handleEvent(event: MessageEvent): void }
type LoadListener = (() => void) | { handleEvent(event: Event): void }

/** One window: its origin, its `message` listeners, and what has been dispatched to it. */
export class FakeWindow {
  readonly listeners: MessageListener[] = []
  /** Messages dispatched (all listeners ran). */
  dispatched = 0
  /** Messages dropped because `targetOrigin` did not match, as a browser drops them. */
  droppedOrigin = 0
  /** Exceptions thrown by listeners (a browser reports them and goes on with the next listener). */
  errors = 0
  /** Called after each dispatch; the scenarios count completions with it. */
  onDispatched: (() => void) | undefined

  /** `parent`: the window that embeds this one (for a widget's window, the host's). */
  constructor(
    readonly origin: string,
    readonly parent?: FakeWindow
  ) {}

  addEventListener(type: string, listener: MessageListener): void {
    if (type === "message") this.listeners.push(listener)
  }

  removeEventListener(type: string, listener: MessageListener): void {
    if (type !== "message") return
    const at = this.listeners.indexOf(listener)
    if (at >= 0) this.listeners.splice(at, 1)
  }

  /**
   * `iframe.contentWindow.postMessage(…)` as the embedding page calls it: the source is the parent.
   * (A widget reaches its parent through {@link FakeWindow.parentProxy} instead.)
   */
  postMessage(message: unknown, targetOrigin: string): void {
    if (this.parent === undefined) throw new Error("postMessage on a top-level fake window: use parentProxy() of the sender")
    this.receive(this.parent, message, targetOrigin)
  }

  /** What a script in this window sees as `window.parent`: posting there comes from this window. */
  parentProxy(): { readonly postMessage: (message: unknown, targetOrigin: string) => void } {
    const parent = this.parent
    if (parent === undefined) throw new Error("a top-level fake window has no parent")
    return { postMessage: (message, targetOrigin) => parent.receive(this, message, targetOrigin) }
  }

  /** A message from `source` arrives: clone now (as the browser does, at post time), dispatch in a new task. */
  receive(source: FakeWindow, message: unknown, targetOrigin: string): void {
    if (targetOrigin !== "*" && targetOrigin !== this.origin) {
      this.droppedOrigin++
      return
    }
    const event = { data: structuredClone(message), origin: source.origin, source } as unknown as MessageEvent
    setImmediate(dispatch, this, event)
  }
}

const dispatch = (target: FakeWindow, event: MessageEvent): void => {
  const listeners = target.listeners
  // Listeners added during the dispatch are not called for it, as in the DOM.
  for (let i = 0, n = listeners.length; i < n; i++) {
    try {
      const listener = listeners[i]!
      if (typeof listener === "function") listener(event)
      else listener.handleEvent(event)
    } catch {
      target.errors++
    }
  }
  target.dispatched++
  target.onDispatched?.()
}

/** An iframe element: its window and its `load` listeners. */
export class FakeFrame {
  private readonly loadListeners: LoadListener[] = []
  constructor(readonly contentWindow: FakeWindow) {}
  addEventListener(type: string, listener: LoadListener): void {
    if (type === "load") this.loadListeners.push(listener)
  }
  removeEventListener(type: string, listener: LoadListener): void {
    const at = this.loadListeners.indexOf(listener)
    if (type === "load" && at >= 0) this.loadListeners.splice(at, 1)
  }
  /** The browser fires `load` on the iframe element. */
  load(): void {
    for (const listener of [...this.loadListeners]) {
      if (typeof listener === "function") listener()
      else listener.handleEvent(new Event("load"))
    }
  }
}

/**
 * Runs `fn` with `globalThis.addEventListener`/`removeEventListener` on `window` and
 * `globalThis.parent` set to `parent`: matrix-widget-api reads those while it is built and while
 * its transport starts or stops.
 */
export const asGlobalWindow = <A>(window: FakeWindow, parent: unknown, fn: () => A): A => {
  const g = globalThis as unknown as Record<string, unknown>
  const saved = { add: g["addEventListener"], remove: g["removeEventListener"], parent: g["parent"] }
  g["addEventListener"] = (type: string, listener: MessageListener) => window.addEventListener(type, listener)
  g["removeEventListener"] = (type: string, listener: MessageListener) => window.removeEventListener(type, listener)
  g["parent"] = parent
  try {
    return fn()
  } finally {
    g["addEventListener"] = saved.add
    g["removeEventListener"] = saved.remove
    g["parent"] = saved.parent
  }
}
