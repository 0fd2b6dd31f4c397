export * from "./listen.ts"
export * from "./websocket.ts"
