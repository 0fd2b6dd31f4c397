/**
 * The admin model of a running engine (admin.ts serves it): the engine's sessions, the approval
 * queue, the message log, and what the service adds (accounts, device trust, homeserver health,
 * blocking widgets), with a change feed that `notify` fans out to every open event stream.
 */
import type { Engine } from "@widgethost/engine"
import type { ApprovalQueue } from "./approvals.ts"
import type { AdminChange, AdminModel, AdminWidget } from "./admin.ts"
import type { MessageLog } from "./message-log.ts"

/**
 * The admin model of an engine: its sessions (with `phase` as the connection `state`), its approval
 * queue and message log, and a change feed that `notify` fans out to every open event stream.
 */
export const engineAdminModel = (parts: {
  readonly engine: Pick<Engine, "sessions" | "session">
  readonly widgets: () => ReadonlyArray<AdminWidget>
  readonly approvals: ApprovalQueue
  readonly messages: Pick<MessageLog, "get"> & Partial<Pick<MessageLog, "logsContent">>
  readonly createUser?: AdminModel["createUser"]
  readonly identity?: AdminModel["identity"]
  readonly verification?: AdminModel["verification"]
  readonly homeserver?: AdminModel["homeserver"]
  readonly account?: AdminModel["account"]
  readonly blockWidget?: AdminModel["blockWidget"]
}): AdminModel & { readonly notify: (change: AdminChange) => void } => {
  const { engine, widgets, approvals, messages } = parts
  const listeners = new Set<(change: AdminChange) => void>()
  return {
    widgets,
    sessions: () => engine.sessions().map((info) => ({ ...info, state: info.phase })),
    approvals,
    closeSession: (sessionId) => {
      const session = engine.session(sessionId)
      session?.close("closed from the admin console")
      return session !== undefined
    },
    messageLog: (sessionId) => messages.get(sessionId),
    logsContent: messages.logsContent === true,
    onChange: (listener) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    notify: (change) => {
      for (const listener of listeners) listener(change)
    },
    ...(parts.createUser === undefined ? {} : { createUser: parts.createUser }),
    ...(parts.identity === undefined ? {} : { identity: parts.identity }),
    ...(parts.verification === undefined ? {} : { verification: parts.verification }),
    ...(parts.homeserver === undefined ? {} : { homeserver: parts.homeserver }),
    ...(parts.account === undefined ? {} : { account: parts.account }),
    ...(parts.blockWidget === undefined ? {} : { blockWidget: parts.blockWidget })
  }
}

