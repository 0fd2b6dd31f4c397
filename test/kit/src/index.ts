export * from "./in-memory-homeserver.ts"
export * from "./manual-clock.ts"
export * from "./widget-harness.ts"
