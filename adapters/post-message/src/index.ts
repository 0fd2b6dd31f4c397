export * from "./post-message.ts"
