/**
 * Capabilities the engine cannot read (`io.element.requires_client`, `m.capability.screenshot`,
 * MSC4039 media, a client's own): the engine denies such a capability unless the client declares
 * it serves it (`policy.clientCapabilities`). With the reference, the driver is the one authority
 * on every capability, and the client serves the opaque ones itself (its `action:` listeners and
 * toWidget requests). So the drop-in declares each opaque capability a widget asks for, as the
 * request passes by, before the engine weighs it; the driver's `validateCapabilities` decides.
 * Capabilities the engine reads keep the engine's rules (unserved, reserved, unsupported).
 */
import { parseCapability } from "@widgethost/core"

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> => typeof value === "object" && value !== null && !Array.isArray(value)

const REQUEST_CAPABILITIES = new Set(["request_capabilities", "org.matrix.msc2974.request_capabilities"])

/** Bounds what one widget can make the list grow to (each entry is kept for the drop-in's life). */
const MAX_DECLARED = 1_000

export class OpaqueCapabilities {
  /** The live list the engine's policy reads (`clientCapabilities`). */
  readonly declared: string[]

  constructor(initial: ReadonlyArray<string>) {
    this.declared = [...initial]
  }

  /** Looks at one message from the widget and declares the opaque capabilities it asks for. */
  admitFrom(raw: unknown): void {
    if (!isRecord(raw)) return
    let list: unknown
    if (raw["api"] === "toWidget" && raw["action"] === "capabilities" && isRecord(raw["response"])) list = raw["response"]["capabilities"]
    else if (raw["api"] === "fromWidget" && typeof raw["action"] === "string" && REQUEST_CAPABILITIES.has(raw["action"]) && isRecord(raw["data"])) list = raw["data"]["capabilities"]
    if (!Array.isArray(list)) return
    for (const capability of list) {
      if (typeof capability !== "string" || this.declared.includes(capability) || this.declared.length >= MAX_DECLARED) continue
      const parsed = parseCapability(capability)
      if (parsed._tag === "Success" && parsed.success._tag === "Other") this.declared.push(capability)
    }
  }
}
