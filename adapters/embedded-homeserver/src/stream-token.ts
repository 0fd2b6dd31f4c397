import { invalidParam } from "./errors.ts"

/**
 * One token format for `/sync`'s `next_batch`, `prev_batch` and every pagination token: `s<pos>`,
 * the gap just after stream position `pos`. Paginating forwards from it yields events with a
 * greater position, backwards those at or below it. Positions are journaled, so tokens stay
 * meaningful across restarts.
 *
 * @example streamToken(42) // "s42"
 */
export const streamToken = (pos: number): string => `s${pos}`

export const parseStreamToken = (token: string, what: string): number => {
  const m = /^s(\d{1,15})$/.exec(token)
  if (m === null) throw invalidParam(`Unknown ${what} token '${token.slice(0, 64)}'.`)
  return Number(m[1])
}
