/**
 * The commands that reach the embedder's side: approval prompts (capabilities and OpenID), client
 * hooks and custom actions, and the settling of the client's own toWidget requests. Each answer
 * comes back as an input of a later drain, and a prompt or call withdrawn meanwhile (timed out, new
 * document, closed) answers nothing: the session has answered already.
 */
import type { Command, FeatureTable, Input, Withdrawable } from "@widgethost/core"
import { Prompt } from "./approval-prompt.ts"
import type { ClientServing } from "./client-hooks.ts"
import type { EngineFault, EngineOptions } from "./engine-options.ts"
import { type Entry, originOf, settleApproval, settleClientCall } from "./engine-entry.ts"

export type ClientCommand = Extract<Command, { readonly _tag: "AskApprover" | "AskOpenIdApprover" | "CancelApproval" | "CallClient" | "CancelClientCall" | "ClientRequestSettled" }>

/** What the client side needs of the engine. */
export interface ClientSide {
  readonly approver: EngineOptions["approver"]
  readonly openIdApprover: EngineOptions["openIdApprover"]
  readonly serving: ClientServing
  /** The engine's features: the OpenID prompt comes with `openIdFeature`. */
  readonly features: FeatureTable
  readonly push: (key: string, input: Input) => void
  readonly fault: (error: unknown, kind: EngineFault["fault"], key: string, widgetId: string) => void
}

export const executeClientCommand = (side: ClientSide, entry: Entry, key: string, command: ClientCommand): void => {
  const { push, fault } = side
  switch (command._tag) {
    case "AskApprover": {
      const prompt = new Prompt(key, entry.handle.widget, originOf(entry), command.requested, command.alreadyApproved, side.features.descriptions)
      ;(entry.approvals ??= new Map()).set(command.ticket, prompt)
      const decide = (approved: ReadonlyArray<string>) => {
        if (!settleApproval(entry, command.ticket)) return // cancelled meanwhile
        push(key, { _tag: "ApprovalDecided", ticket: command.ticket, approved })
      }
      if (side.approver === undefined) return decide([])
      const refuse = (error: unknown) => {
        // A withdrawn prompt's approver may well reject (an AbortError): that is no fault.
        if (entry.approvals?.has(command.ticket) === true) fault(error, "approver", key, entry.handle.widgetId)
        decide([])
      }
      try {
        side.approver(prompt).then(decide, refuse)
      } catch (error) {
        refuse(error)
      }
      return
    }
    case "AskOpenIdApprover": {
      // Only a session served by the OpenID feature asks.
      const open = side.features.openIdPrompt
      if (open === undefined) return
      const keep = (prompt: Withdrawable) => void (entry.approvals ??= new Map()).set(command.ticket, prompt)
      const decide = (allowed: boolean) => {
        if (settleApproval(entry, command.ticket)) push(key, { _tag: "OpenIdDecided", ticket: command.ticket, allowed })
      }
      // A withdrawn prompt's approver may well reject (an AbortError): that is no fault.
      const onFault = (error: unknown) => void (entry.approvals?.has(command.ticket) === true && fault(error, "approver", key, entry.handle.widgetId))
      open(side.openIdApprover, key, entry.handle.widgetId, command.origin, keep, decide, onFault)
      return
    }
    case "CancelApproval":
      entry.approvals?.get(command.ticket)?.withdraw()
      settleApproval(entry, command.ticket)
      return
    case "CallClient": {
      // Only a session served by the client-actions feature calls the client.
      const actions = side.serving.actions
      if (actions === undefined) return
      const { widget } = entry.handle
      const context = actions.hookCall(key, widget.id, widget, originOf(entry), command.roomId, command.action, entry.context.state.approved)
      ;((entry.client ??= { calls: undefined, requests: undefined }).calls ??= new Map()).set(command.ticket, context)
      actions.run(side.serving, command.call, context, (outcome) => {
        // Cancelled meanwhile (timed out, new document, closed): the session answered already.
        if (!settleClientCall(entry, command.ticket)) return
        push(key, { _tag: "ClientAnswered", ticket: command.ticket, outcome })
      })
      return
    }
    case "CancelClientCall":
      entry.client?.calls?.get(command.ticket)?.withdraw()
      settleClientCall(entry, command.ticket)
      return
    case "ClientRequestSettled":
      entry.client?.requests?.settle(command.id, command.outcome)
      return
  }
}
