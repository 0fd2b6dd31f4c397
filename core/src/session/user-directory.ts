/**
 * MSC3973 `user_directory_search`: the homeserver's user directory, as the hosting client's invite
 * dialog sees it. Needs `m.user_directory_search`; `data` mirrors the client-server endpoint's body
 * (`search_term`, optional `limit`) and is passed on unchanged ("SHOULD NOT modify"), and the
 * answer is the endpoint's body (`limited`, `results`).
 */
import { ProtocolError } from "../protocol-error.ts"
import type { RawRequest } from "./state.ts"
import type { Stepper } from "./step.ts"

export const userDirectorySearch = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
  if (!s.state.permissions.userDirectorySearch) return s.fail(raw, ProtocolError.NotAllowed({ what: "searching the user directory (needs m.user_directory_search)" }))
  const { search_term: searchTerm, limit } = data
  if (typeof searchTerm !== "string") return s.fail(raw, ProtocolError.Malformed({ issue: "search_term must be a string" }))
  if (limit !== undefined && !(typeof limit === "number" && Number.isSafeInteger(limit) && limit >= 0)) return s.fail(raw, ProtocolError.Malformed({ issue: "limit must be a non-negative integer when present" }))
  s.start(raw)
  s.call({ _tag: "UserDirectorySearch", searchTerm, ...(limit === undefined ? {} : { limit }) }, { _tag: "Answer", raw, format: "body" })
}
