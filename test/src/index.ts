export * from "./in-memory-homeserver.ts"
export * from "./widget-harness.ts"
export * from "./chart-driver.ts"
