/**
 * The session chart as a Mermaid state diagram, generated from the machine's own definition
 * (its state nodes, transitions, guards, delays and actions), so the picture in the docs cannot
 * drift from what runs: `docs/session-machine.md` is this output, and a test regenerates and
 * compares it (`npm run diagram` rewrites it).
 *
 * @example
 * sessionDiagram() // "stateDiagram-v2\n  [*] --> loading\n  …"
 */
import type { AnyStateNode } from "xstate"
import { sessionMachine } from "./session-machine.ts"

/** What the diagram reads of a transition definition. */
interface Transition {
  readonly eventType: string
  readonly guard?: unknown
  readonly actions: ReadonlyArray<unknown>
  readonly target?: ReadonlyArray<AnyStateNode> | undefined
  readonly reenter: boolean
  readonly delay?: unknown
}

const nameOf = (node: AnyStateNode): string => node.path.join("_") || "root"

const guardText = (guard: unknown): string => {
  if (guard === undefined) return ""
  if (typeof guard === "string") return guard
  if (typeof guard === "function" && "guards" in guard) {
    const parts = (guard as { guards: ReadonlyArray<unknown> }).guards.map(guardText)
    return parts.join(" and ")
  }
  if (typeof guard === "object" && guard !== null && "type" in guard) return String((guard).type)
  return "guard"
}

const actionText = (action: unknown): string => {
  if (typeof action === "string") return action
  if (typeof action === "function" && "sendId" in action) return `cancel ${String((action as { sendId: unknown }).sendId)}`
  if (typeof action === "object" && action !== null && "type" in action) return String((action).type)
  return "action"
}

const label = (event: string, t: Transition): string => {
  const guard = guardText(t.guard)
  const actions = t.actions.map(actionText)
  return `${event}${guard === "" ? "" : ` [${guard}]`}${actions.length === 0 ? "" : ` / ${actions.join(", ")}`}`
}

const eventOf = (t: Transition): string => (t.eventType.startsWith("xstate.after.") ? `after ${String(t.delay)}` : t.eventType)

/** The session chart, as Mermaid `stateDiagram-v2` text. */
export const sessionDiagram = (): string => {
  const lines: string[] = ["stateDiagram-v2"]
  const edges: string[] = []
  const visit = (node: AnyStateNode, indent: string): void => {
    const children = Object.values(node.states)
    if (node.initial !== undefined && children.length > 0) {
      const initial = node.initial.target[0]
      if (initial !== undefined) lines.push(`${indent}[*] --> ${nameOf(initial)}`)
    }
    for (const child of children) {
      if (Object.keys(child.states).length > 0) {
        lines.push(`${indent}state ${nameOf(child)} {`)
        visit(child, `${indent}  `)
        lines.push(`${indent}}`)
      }
      if (child.type === "final") edges.push(`  ${nameOf(child)} --> [*]`)
      const internal: string[] = []
      // Entry actions of the chart's own (the raises that arm `after` delays are shown as their transitions).
      const entry = child.entry.filter((action) => !(typeof action === "function" && (action as { type?: unknown }).type === "xstate.raise"))
      if (entry.length > 0) internal.push(`entry / ${entry.map(actionText).join(", ")}`)
      const on = [...(child.transitions as Map<string, ReadonlyArray<Transition>>).entries()]
      const transitions: Array<[string, Transition]> = [
        ...on.filter(([event]) => !event.startsWith("xstate.after.")).flatMap(([event, list]) => list.map((t): [string, Transition] => [event, t])),
        ...(child.after as ReadonlyArray<Transition>).map((t): [string, Transition] => [eventOf(t), t])
      ]
      for (const [event, t] of transitions) {
        const targets = t.target ?? []
        if (targets.length === 0) internal.push(label(event, t))
        for (const target of targets) edges.push(`  ${nameOf(child)} --> ${nameOf(target)} : ${label(event, t)}${t.reenter && target === child ? " (re-entered)" : ""}`)
      }
      if (internal.length > 0) {
        lines.push(`${indent}note right of ${nameOf(child)}`)
        for (const line of internal) lines.push(`${indent}  ${line}`)
        lines.push(`${indent}end note`)
      }
    }
  }
  visit(sessionMachine.root, "  ")
  return [...lines, ...edges].join("\n") + "\n"
}

/** `docs/session-machine.md`: the diagram with a line saying where it comes from. */
export const sessionDiagramDocument = (): string =>
  [
    "# The session chart",
    "",
    "Generated from `machines/src/session-machine.ts` by `machines/src/session-diagram.ts` (`npm run diagram`);",
    "a test fails when this file and the machine differ. Arrows are transitions (event, [guard], / actions);",
    "notes list what a state does without leaving it. `after` is a delay of the chart.",
    "",
    "```mermaid",
    sessionDiagram().trimEnd(),
    "```",
    ""
  ].join("\n")
