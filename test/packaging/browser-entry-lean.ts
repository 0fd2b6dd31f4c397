/**
 * What a browser client imports when it ships only what it uses: the lean engine (the core
 * proposals; no optional feature passed here) and the postMessage transport, with the core they
 * use. The bench and the packaging test bundle this beside `browser-entry.ts` (every feature),
 * so the two sizes say what the optional features cost.
 */
export { createLeanEngine } from "@widgethost/engine"
export { attachPostMessageTransport } from "@widgethost/post-message"
export { browserHost, chooseTransport, parseWidgetDefinition, renderWidgetUrl } from "@widgethost/core"
