export * from "@widgethost/testing"
export * from "./answering-hooks.ts"
export * from "./chart-driver.ts"
