/**
 * One registration's I/O: each lifecycle event in (registration-lifecycle.ts decides), its effects
 * carried out in order over the sockets, timers, the outbound queue and the requests kept for
 * redelivery (unanswered-requests.ts). The transport (websocket.ts) admits connections and hands
 * each accepted socket here; everything that happens on it afterwards happens in this file.
 */
import { type RawData, WebSocket } from "ws"
import type { WidgetMessage } from "@widgethost/core"
import type { WidgetSession } from "@widgethost/engine"
import type { Link, Outbound, Registration } from "./registration.ts"
import { corkForThisTurn } from "./corked-writes.ts"
import { messageText } from "./message-text.ts"
import { clampReason } from "./upgrade.ts"
import { codeOfWsError, type LinkEndCause, type LinkEnding } from "./link-endings.ts"
import { type LifecycleConfig, type LifecycleEffect, type LifecycleEvent, stepLifecycle } from "./registration-lifecycle.ts"
import { keptRequestId } from "./unanswered-requests.ts"
import { widgetRequestId } from "./answered-requests.ts"
import type { TransportCounters } from "./transport-counters.ts"
import { type Timers, TRANSPORT_GAP_ACTION } from "./transport-types.ts"

/** What the transport shares with every registration's I/O: its settings, timers, counters and open sockets. */
export interface RegistrationIoSettings {
  readonly timers: Timers
  readonly config: LifecycleConfig
  readonly counters: TransportCounters
  /** Every accepted socket until it closes; the transport's `close()` waits for them. */
  readonly sockets: Set<WebSocket>
  readonly rateLimit: { readonly messages: number; readonly perMs: number }
  readonly pingIntervalMs: number
  readonly deadAfterMs: number
  readonly outboundQueueLimit: number
  readonly highWaterMarkBytes: number
  readonly closeTimeoutMs: number
}

export interface RegistrationIo {
  /** Feeds one event to the registration's lifecycle. `arriving`: the link a `Connected` is about. */
  readonly apply: (reg: Registration, event: LifecycleEvent, arriving?: Link) => void
  /** Takes over an upgraded socket as the registration's new link. */
  readonly accept: (reg: Registration, ws: WebSocket, origin: string | undefined) => void
}

export const createRegistrationIo = (settings: RegistrationIoSettings): RegistrationIo => {
  const { timers, config, counters, sockets, rateLimit, pingIntervalMs, deadAfterMs, outboundQueueLimit, highWaterMarkBytes, closeTimeoutMs } = settings

  // ---- the lifecycle: one event in, its effects carried out in order ----------------------------

  /** Feeds one event to the registration's lifecycle. `arriving`: the link a `Connected` is about. */
  const apply = (reg: Registration, event: LifecycleEvent, arriving?: Link) => {
    const previous = reg.link
    const { state, effects } = stepLifecycle(reg.lifecycle, event, config)
    reg.lifecycle = state
    const adopted = arriving !== undefined && !effects.some((e) => e._tag === "EndLink" && e.which === "new")
    if (adopted) reg.link = arriving
    for (const effect of effects) perform(reg, effect, arriving !== undefined ? previous : reg.link, arriving)
  }

  const perform = (reg: Registration, effect: LifecycleEffect, current: Link | undefined, arriving: Link | undefined) => {
    switch (effect._tag) {
      case "OpenSession":
        return openSession(reg, arriving ?? current)
      case "ForgetSession":
        return forgetSession(reg, effect.reason)
      case "TransportDown":
        return transportDown(reg)
      case "TransportUp":
        return guarded(() => reg.session?.session.transportUp())
      case "ArmGrace":
        reg.grace = timers.setTimeout(() => {
          reg.grace = undefined
          apply(reg, { _tag: "GraceExpired" })
        }, config.resumeGraceMs)
        return
      case "CancelGrace":
        if (reg.grace !== undefined) timers.clearTimeout(reg.grace)
        reg.grace = undefined
        return
      case "EndLink": {
        const link = effect.which === "new" ? arriving : current
        return link === undefined ? undefined : closeLink(reg, link, effect.ending)
      }
      case "AnnounceGap":
        reg.queue.unshift(gapNotice(reg, effect.dropped))
        return
      case "Redeliver": {
        // No `mark`: the hook heard of these when they were first written.
        const again = reg.unanswered.takeAll()
        counters.redelivered += again.length
        reg.queue.unshift(...again)
        return
      }
      case "Flush":
        return pump(reg)
      case "FlushAll": {
        const link = reg.link
        if (link !== undefined) for (const item of reg.queue) write(reg, link, item)
        reg.queue = []
        return
      }
      case "Resumed":
        counters.sessionsResumed++
        return
      case "Expired":
        counters.sessionsExpired++
        return
    }
  }

  /** Session callbacks that throw are counted; they must not take the transport down with them. */
  const guarded = (fn: () => void) => {
    try {
      fn()
    } catch {
      counters.sessionErrors++
    }
  }

  const openSession = (reg: Registration, link: Link | undefined) => {
    const generation = reg.generation
    let session: WidgetSession
    try {
      session = reg.open(sinkFor(reg, generation), { origin: link?.origin })
    } catch {
      counters.sessionErrors++
      return apply(reg, { _tag: "OpenFailed" })
    }
    counters.sessionsOpened++
    // The link may have died while the session was being opened.
    if (reg.generation !== generation) return
    const unsubscribe = session.onClose((reason) => {
      if (reg.generation === generation) apply(reg, { _tag: "SessionClosed", reason })
    })
    reg.session = { session, unsubscribe }
  }

  const forgetSession = (reg: Registration, closeReason: string | undefined) => {
    const current = reg.session
    reg.generation++
    reg.session = undefined
    reg.queue = []
    reg.unanswered.clear()
    reg.answered.clear()
    reg.gapRequests.clear()
    if (reg.grace !== undefined) timers.clearTimeout(reg.grace)
    reg.grace = undefined
    current?.unsubscribe()
    if (current !== undefined && closeReason !== undefined) guarded(() => current.session.close(closeReason))
  }

  // Deferred: a link can end inside the session's own `send` (overflow), and the session must
  // not be re-entered in the middle of its step.
  const transportDown = (reg: Registration) => {
    const generation = reg.generation
    queueMicrotask(() => {
      if (reg.generation === generation && reg.lifecycle.session === "suspended") guarded(() => reg.session?.session.transportDown())
    })
  }

  // ---- outbound --------------------------------------------------------------------------------

  /**
   * Hands one message to the socket. Only the write that takes the socket's buffer past the high
   * water mark carries a callback (a callback per message costs throughput); until it fires, which
   * means everything before it reached the OS, the link is blocked and messages wait in the queue.
   */
  const write = (reg: Registration, link: Link, item: Outbound) => {
    counters.messagesOut++
    let data: string
    if (typeof item === "string") data = item
    else {
      data = item.data
      if (item.mark !== undefined)
        try {
          reg.onWrite?.written(item.mark)
        } catch {
          // The hook's owner keeps its own books; its failure must not cost the widget the message.
        }
      if (item.requestId !== undefined) remember(reg, item.requestId, data)
      if (item.answerTo !== undefined) reg.answered.written(item.answerTo, link)
    }
    corkForThisTurn(link.ws)
    if (link.ws.bufferedAmount + data.length < highWaterMarkBytes) return link.ws.send(data)
    link.blocked = true
    link.ws.send(data, () => {
      link.blocked = false
      if (reg.link === link) pump(reg)
    })
  }

  const pump = (reg: Registration) => {
    const link = reg.link
    if (link === undefined) return
    while (reg.queue.length > 0 && !link.blocked && reg.link === link) write(reg, link, reg.queue.shift()!)
  }

  /** Keeps a written toWidget request until the widget answers it; one forgotten past the bound is counted. */
  const remember = (reg: Registration, requestId: string, data: string) => {
    const forgotten = reg.unanswered.keep(requestId, data)
    if (forgotten === 0) return
    counters.forgotten += forgotten
    apply(reg, { _tag: "Forgotten", count: forgotten })
  }

  const enqueue = (reg: Registration, item: Outbound) => {
    const link = reg.link
    if (link !== undefined && reg.queue.length === 0 && !link.blocked) return write(reg, link, item)
    reg.queue.push(item)
    if (reg.queue.length <= outboundQueueLimit) return pump(reg)
    // Overflow: the whole backlog goes (counted, and announced to the widget when it is back).
    const dropped = reg.queue.length
    for (const lost of reg.queue) if (typeof lost !== "string" && lost.answerTo !== undefined) reg.answered.lost(lost.answerTo)
    counters.overflows++
    counters.dropped.overflow += dropped
    reg.queue = []
    apply(reg, { _tag: "Overflowed", dropped })
  }

  /** The `send` handed to one session: bound to its generation, so it can never reach a later session's widget. */
  const sinkFor = (reg: Registration, generation: number) => (message: WidgetMessage) => {
    if (reg.generation !== generation) {
      counters.dropped.stale++
      return
    }
    let data: string
    try {
      data = messageText(message)
    } catch {
      counters.dropped.unserialisable++
      return
    }
    const mark = reg.onWrite?.mark(message)
    const requestId = keptRequestId(message)
    const answerTo = message.api === "fromWidget" && "response" in message ? message.requestId : undefined
    if (answerTo !== undefined) reg.answered.answered(answerTo, data)
    enqueue(reg, mark === undefined && requestId === undefined && answerTo === undefined ? data : { data, mark, requestId, answerTo })
  }

  /** The transport's own toWidget request: kept until answered and delivered again like the session's. */
  const gapNotice = (reg: Registration, dropped: number): Outbound => {
    const requestId = `widgethost-gap-${++reg.gapSeq}`
    reg.gapRequests.add(requestId)
    const data = JSON.stringify({ api: "toWidget", widgetId: reg.widgetId, requestId, action: TRANSPORT_GAP_ACTION, data: { dropped, reason: "overflow" } })
    return { data, requestId }
  }

  // ---- connections -----------------------------------------------------------------------------

  /** A link ended on its own (the widget, ws, a limit): the lifecycle decides what follows. */
  const linkEnded = (reg: Registration, link: Link, cause: LinkEndCause) => {
    if (!link.ended) apply(reg, { _tag: "LinkEnded", cause })
  }

  const closeLink = (reg: Registration, link: Link, ending: LinkEnding) => {
    if (link.ended) return
    link.ended = true
    timers.clearInterval(link.ticker)
    timers.clearInterval(link.rateWindow)
    if (reg.link === link) reg.link = undefined
    counters.closed[ending.code] = (counters.closed[ending.code] ?? 0) + 1
    if (ending.how === "terminate") return link.ws.terminate()
    if (link.ws.readyState === WebSocket.CLOSED) return
    if (ending.how === "close") link.ws.close(ending.code, clampReason(ending.reason))
    // A peer that never answers the close frame (or never reads) must not hold the socket.
    const killer = timers.setTimeout(() => link.ws.terminate(), closeTimeoutMs)
    link.ws.once("close", () => timers.clearTimeout(killer))
  }

  const receive = (reg: Registration, link: Link, data: RawData, isBinary: boolean) => {
    if (link.ended) return
    link.active = true
    if (isBinary) return linkEnded(reg, link, { _tag: "Binary" })
    if (++link.received > rateLimit.messages) return linkEnded(reg, link, { _tag: "RateLimited", ...rateLimit })
    counters.messagesIn++
    const text = (data as Buffer).toString()
    let message: unknown
    try {
      message = JSON.parse(text)
    } catch {
      message = text // the session counts or answers what it cannot decode
    }
    reg.unanswered.settle(message)
    if (isGapAnswer(reg, message)) return
    const session = reg.session?.session
    if (session === undefined) return
    const asked = widgetRequestId(message)
    if (asked !== undefined && isRepeat(reg, link, asked, message)) return
    try {
      session.receive(message)
    } catch {
      counters.sessionErrors++
      linkEnded(reg, link, { _tag: "SessionError" })
    }
  }

  /**
   * A request the widget sent again with an id seen before (it resends what is pending after a
   * drop): never the session's again. Its answer is coming or on this link already, or went out
   * on a link that dropped since and is written again, once.
   */
  const isRepeat = (reg: Registration, link: Link, requestId: string, message: unknown): boolean => {
    const repeat = reg.answered.repeat(requestId, link)
    switch (repeat._tag) {
      case "New":
        return false
      case "Drop":
        counters.repeats.dropped++
        return true
      case "AnswerAgain":
        counters.repeats.answeredAgain++
        enqueue(reg, { data: repeat.data, answerTo: requestId })
        return true
      case "AnswerLost": {
        counters.repeats.answerLost++
        const data = JSON.stringify({ ...(message as object), response: { error: { message: repeat.message } } })
        reg.answered.answered(requestId, data)
        enqueue(reg, { data, answerTo: requestId })
        return true
      }
    }
  }

  /** The widget's answer to a gap notice is the transport's, not the session's. */
  const isGapAnswer = (reg: Registration, message: unknown): boolean => {
    if (reg.gapRequests.size === 0 || typeof message !== "object" || message === null) return false
    const { api, requestId } = message as { api?: unknown; requestId?: unknown }
    return api === "toWidget" && typeof requestId === "string" && reg.gapRequests.delete(requestId)
  }

  const accept = (reg: Registration, ws: WebSocket, origin: string | undefined) => {
    sockets.add(ws)
    ws.once("close", () => sockets.delete(ws))
    counters.accepted++
    const link: Link = { ws, origin, blocked: false, received: 0, active: true, idleMs: 0, ended: false, ticker: undefined, rateWindow: undefined }
    if (reg.lifecycle.retired === undefined && reg.lifecycle.linked && config.onDuplicate === "refuse") counters.refused.duplicate++
    ws.on("message", (data, isBinary) => receive(reg, link, data, isBinary))
    ws.on("pong", () => {
      link.active = true
    })
    ws.on("error", (error: Error & { code?: string }) => {
      // Protocol errors: ws is already closing with the right code. Socket errors: "close" follows.
      const code = codeOfWsError(error.code)
      if (code !== undefined) linkEnded(reg, link, { _tag: "ProtocolError", code, message: error.message })
    })
    ws.on("close", (code) => linkEnded(reg, link, { _tag: "WidgetClosed", code }))
    link.ticker = timers.setInterval(() => {
      if (link.active) {
        link.active = false
        link.idleMs = 0
      } else link.idleMs += pingIntervalMs
      if (link.idleMs >= deadAfterMs) linkEnded(reg, link, { _tag: "DeadPeer" })
      else ws.ping()
    }, pingIntervalMs)
    link.rateWindow = timers.setInterval(() => {
      link.received = 0
    }, rateLimit.perMs)
    apply(reg, { _tag: "Connected" }, link)
  }

  return { apply, accept }
}
