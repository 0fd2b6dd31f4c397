/**
 * The widget's side of the Widget API, for widgets, their tests and simulations: a client for
 * both transports (postMessage and MSC3009 websockets) that does the capability exchange, sends
 * typed requests and awaits their answers, and answers the host's requests; and a shim that runs
 * code written for postMessage (matrix-widget-api's WidgetApi) over a websocket.
 *
 * @packageDocumentation
 * @module @widgethost/widget-client
 */
export * from "./widget-client.ts"
export * from "./widget-transport.ts"
export * from "./widget-window.ts"
