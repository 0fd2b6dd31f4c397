/**
 * What a browser client imports to host widgets: the engine and the postMessage transport (with
 * the core they use). The bench and the packaging test bundle this to measure what a browser
 * app pays, and to prove it pulls in nothing of Node.
 */
export { createEngine } from "@widgethost/engine"
export { attachPostMessageTransport } from "@widgethost/post-message"
export { browserHost, chooseTransport, parseWidgetDefinition, renderWidgetUrl } from "@widgethost/core"
