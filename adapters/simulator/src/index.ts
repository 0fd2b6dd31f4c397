export * from "./cli-flags.ts"
export * from "./simulate.ts"
