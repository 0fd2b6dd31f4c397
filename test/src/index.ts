export * from "@widgethost/testing"
export * from "@widgethost/testing"
export * from "./chart-driver.ts"
