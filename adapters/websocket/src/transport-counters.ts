/**
 * The websocket transport's counters: one mutable record the transport and its registrations'
 * I/O (registration-io.ts) bump as things happen, and the read-only snapshot `stats()` returns.
 */
import type { RefusalReason, WebsocketTransportStats } from "./transport-types.ts"

export const newCounters = () => ({
  accepted: 0,
  refused: { token: 0, origin: 0, duplicate: 0, closing: 0, handshake: 0, "not-websocket": 0 } as Record<RefusalReason, number>,
  closed: {} as Record<number, number>,
  messagesIn: 0,
  messagesOut: 0,
  dropped: { overflow: 0, stale: 0, unserialisable: 0 },
  overflows: 0,
  redelivered: 0,
  forgotten: 0,
  repeats: { dropped: 0, answeredAgain: 0, answerLost: 0 },
  sessionsOpened: 0,
  sessionsResumed: 0,
  sessionsExpired: 0,
  sessionErrors: 0
})

export type TransportCounters = ReturnType<typeof newCounters>

/** A copy of the counters, so a caller holding it sees no later change. */
export const statsOf = (counters: TransportCounters, registered: number, connections: number): WebsocketTransportStats => ({
  registered,
  connections,
  accepted: counters.accepted,
  refused: { ...counters.refused },
  closed: { ...counters.closed },
  messagesIn: counters.messagesIn,
  messagesOut: counters.messagesOut,
  dropped: { ...counters.dropped },
  overflows: counters.overflows,
  redelivered: counters.redelivered,
  forgotten: counters.forgotten,
  repeats: { ...counters.repeats },
  sessionsOpened: counters.sessionsOpened,
  sessionsResumed: counters.sessionsResumed,
  sessionsExpired: counters.sessionsExpired,
  sessionErrors: counters.sessionErrors
})
