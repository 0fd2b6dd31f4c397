/**
 * Conformance: the embedder's own callbacks failing (a widget sink, the approver, the homeserver
 * port, onReport, close listeners). The engine reports each to `onError` and carries on: the
 * failure costs that message, that prompt or that call, never another session or the engine.
 */
import { SUPPORTED_API_VERSIONS, type WidgetMessage } from "@widgethost/core"
import type { EngineFault } from "@widgethost/engine"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, widgetDefinition } from "../src/index.ts"

const recorder = () => {
  const faults: Array<EngineFault & { readonly message: string }> = []
  const onError = (error: unknown, where: EngineFault) => void faults.push({ ...where, message: error instanceof Error ? error.message : String(error) })
  return { faults, onError }
}

describe("embedder faults", () => {
  it("a widget sink that throws loses its own message; other sessions in the same drain get theirs", () => {
    const { faults, onError } = recorder()
    const h = new Harness({ approver: approveAll, onError })
    const broken = h.engine.openSession({
      widget: widgetDefinition({ id: "broken" }),
      send: () => {
        throw new Error("iframe gone")
      }
    })
    broken.frameLoaded()
    h.session.frameLoaded()
    expect(h.take().map((m) => m.action)).toEqual(["capabilities"])
    expect(faults).toEqual([{ fault: "send", sessionId: broken.sessionId, widgetId: "broken", message: "iframe gone" }])
    expect(broken.info().phase).toBe("negotiating")
  })

  it("an approver that throws synchronously denies the ask; the session becomes ready", async () => {
    const { faults, onError } = recorder()
    const h = new Harness({
      approver: () => {
        throw new Error("no dialog")
      },
      onError
    })
    await h.ready(["m.send.event:m.room.message"])
    expect(h.phase).toBe("ready")
    expect(h.session.info().approved).toEqual([])
    expect(faults.map((f) => [f.fault, f.message])).toEqual([["approver", "no dialog"]])
  })

  it("an approver that rejects denies the ask and is reported; one that answers no value is too", async () => {
    for (const approver of [() => Promise.reject(new Error("crashed")), () => undefined as unknown as Promise<ReadonlyArray<string>>]) {
      const { faults, onError } = recorder()
      const h = new Harness({ approver, onError })
      await h.ready(["m.send.event:m.room.message"])
      expect(h.phase).toBe("ready")
      expect(h.session.info().approved).toEqual([])
      expect(faults.map((f) => f.fault)).toEqual(["approver"])
    }
  })

  it("a withdrawn prompt's approver rejecting is no fault", async () => {
    const { faults, onError } = recorder()
    const h = new Harness({
      approver: ({ signal }) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("AbortError")))),
      limits: { approvalTimeoutMs: 1_000 },
      onError
    })
    h.session.frameLoaded()
    h.ackAll(["m.send.event:m.room.message"])
    await flush()
    await h.advance(1_000)
    await flush()
    expect(h.phase).toBe("ready")
    expect(faults).toEqual([])
  })

  it("a homeserver port that throws instead of failing: the widget gets an error response, the session stays usable", async () => {
    const { faults, onError } = recorder()
    const h = new Harness({ approver: approveAll, onError })
    await h.ready(["m.send.event:m.room.message"])
    h.take()
    const port = h.homeserver as { sendEvent: unknown }
    port.sendEvent = () => {
      throw new TypeError("port bug")
    }
    const id = h.request("send_event", { type: "m.room.message", content: { msgtype: "m.text", body: "hi" } })
    await flush()
    expect(h.responseTo(id)).toEqual({ error: { code: "Homeserver", message: "port bug" } })
    expect(faults.map((f) => [f.fault, f.message])).toEqual([["homeserver", "port bug"]])
    expect(h.responseTo(h.request("supported_api_versions"))).toEqual({ supported_versions: SUPPORTED_API_VERSIONS })
  })

  it("onReport and close listeners that throw are reported; the other listeners still run", async () => {
    const { faults, onError } = recorder()
    const h = new Harness({
      approver: approveAll,
      onError,
      onReport: () => {
        throw new Error("report sink")
      }
    })
    await h.ready([])
    const heard: string[] = []
    h.session.onClose(() => {
      throw new Error("listener bug")
    })
    h.session.onClose((reason) => heard.push(reason))
    // A malformed message is dropped and reported (a Report command).
    h.session.receive("{nope")
    expect(h.take()).toEqual([])
    expect(h.session.info().counters.dropped).toBe(1)
    h.session.close("bye")
    h.take()
    expect(heard).toEqual(["bye"])
    expect(faults.map((f) => f.fault)).toContain("close-listener")
    expect(faults.map((f) => f.fault)).toContain("report")
  })

  it("a sink that runs another session's chart (info()) mid-drain: each session's commands go out once, in order", () => {
    const { faults, onError } = recorder()
    const h = new Harness({ approver: approveAll, onError })
    const seen: string[] = []
    const other = h.engine.openSession({
      widget: widgetDefinition({ id: "other" }),
      send: (message) => {
        seen.push(`other:${message.action}`)
        throw new Error("other sink")
      }
    })
    const asking = h.engine.openSession({
      widget: widgetDefinition({ id: "asking" }),
      send: (message) => {
        seen.push(`asking:${message.action}`)
        // Runs the other session's waiting inputs now, inside this session's drain.
        other.frameLoaded()
        expect(other.info().phase).toBe("negotiating")
      }
    })
    asking.frameLoaded()
    h.engine.flush()
    expect(seen).toEqual(["asking:capabilities", "other:capabilities"])
    expect(faults.map((f) => [f.fault, f.sessionId, f.message])).toEqual([["send", other.sessionId, "other sink"]])
    // Nothing was left behind for a later drain to execute again.
    h.session.frameLoaded()
    expect(h.take().map((m) => m.action)).toEqual(["capabilities"])
    expect(seen).toEqual(["asking:capabilities", "other:capabilities"])
  })

  it("an onError that throws is swallowed", () => {
    const h = new Harness({
      approver: approveAll,
      onError: () => {
        throw new Error("even this")
      }
    })
    const broken = h.engine.openSession({
      widget: widgetDefinition({ id: "broken" }),
      send: (_message: WidgetMessage) => {
        throw new Error("sink")
      }
    })
    broken.frameLoaded()
    h.session.frameLoaded()
    expect(h.take().map((m) => m.action)).toEqual(["capabilities"])
  })
})
