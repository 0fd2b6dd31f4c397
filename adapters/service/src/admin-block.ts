/**
 * Blocking a widget from the console (`POST /api/widgets/block`, body `{ id, roomId? }`): the
 * request is decoded here, never trusting its shape; the service's widget host does the block
 * (widget-host.ts `block`, kept by widget-blocklist.ts).
 */

export interface BlockTarget {
  readonly id: string
  /** Absent for a widget from the configuration file. */
  readonly roomId?: string
}

/**
 * Decodes the body of `POST /api/widgets/block`; never throws.
 *
 * @example parseBlockTarget({ id: "chat", roomId: "!r:localhost" }) // { ok: true, ref: { id: "chat", roomId: "!r:localhost" } }
 */
export const parseBlockTarget = (body: unknown): { readonly ok: true; readonly ref: BlockTarget } | { readonly ok: false; readonly issue: string } => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { ok: false, issue: "the body must be an object { id, roomId? }" }
  const { id, roomId, ...rest } = body as Record<string, unknown>
  const unknown = Object.keys(rest)
  if (unknown.length > 0) return { ok: false, issue: `unknown field ${unknown[0]} (known: id, roomId)` }
  if (typeof id !== "string" || id === "") return { ok: false, issue: "id: expected a non-empty string" }
  if (roomId !== undefined && (typeof roomId !== "string" || roomId === "")) return { ok: false, issue: "roomId: expected a non-empty string" }
  return { ok: true, ref: roomId === undefined ? { id } : { id, roomId } }
}
