/**
 * The host-side paths `conform widget` drives: every edge of the host side's graph once,
 * shortest first, each a path a host could take.
 */
import { expect, it } from "vitest"
import { describeHostPath, isValidHostPath } from "./host-steps.ts"
import { widgetPaths } from "./widget-paths.ts"

it("drives every step from every state of the host side, shortest first", () => {
  expect(widgetPaths().map(describeHostPath)).toEqual([
    "capabilities",
    "capabilities → supported_api_versions",
    "capabilities → notify_capabilities",
    "capabilities → unknown action",
    "capabilities → notify_capabilities → supported_api_versions",
    "capabilities → notify_capabilities → send_event (a type it asked to receive)",
    "capabilities → notify_capabilities → send_event (data null)",
    "capabilities → notify_capabilities → unknown action"
  ])
})

it("keeps to what a host may do: capabilities first, notify once, room events only after it", () => {
  expect(widgetPaths().every(isValidHostPath)).toBe(true)
  expect(isValidHostPath([{ name: "notify_capabilities" }])).toBe(false)
  expect(isValidHostPath([{ name: "capabilities" }, { name: "send_event (data null)" }])).toBe(false)
  expect(isValidHostPath([{ name: "capabilities" }, { name: "notify_capabilities" }, { name: "notify_capabilities" }])).toBe(false)
})
