/**
 * The postMessage transport for browsers: connects a session to a widget iframe.
 *
 * @packageDocumentation
 * @module @widgethost/post-message
 */
export * from "./post-message.ts"
