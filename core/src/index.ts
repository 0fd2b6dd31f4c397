/**
 * The pure protocol core: envelopes, capabilities, permissions, the approval policy, the session's action handlers and the `HomeserverPort` contract. No I/O; runs anywhere.
 *
 * @packageDocumentation
 * @module @widgethost/core
 */
export * from "./envelope.ts"
export * from "./decode.ts"
export * from "./matrix.ts"
export * from "./homeserver-error.ts"
export * from "./homeserver-port.ts"
export * from "./promise-homeserver-port.ts"
export * from "./protocol-error.ts"
export * from "./versions.ts"
export * from "./capabilities.ts"
export * from "./capability-description.ts"
export * from "./permissions.ts"
export * from "./routing-index.ts"
export * from "./policy.ts"
export * from "./widget-definition.ts"
export * from "./transport-choice.ts"
export * from "./url-template.ts"
export * from "./session/state.ts"
export * from "./session/input.ts"
export * from "./session/command.ts"
export * from "./session/step.ts"
export * from "./session/reduce.ts"
export * from "./session/document.ts"
export { askCapabilities, onCapabilitiesTimeout, onApprovalTimeout, onCapabilityWindowEnd } from "./session/negotiation.ts"
export { startStateLoad } from "./session/state-sync.ts"
export * from "./crypto-types.ts"
