/**
 * The admin API's interactive verification of the host's device (SAS emoji), for an account the
 * host has no recovery key of: the console says plainly that the device is unverified, offers
 * Verify (a request to the account's other devices) or shows the other device's request, then
 * the 7 emoji with their names, with Confirm and Cancel. The protocol is the homeserver client's
 * `DeviceVerification`; this file maps it to routes and to the console's section.
 *
 *   GET  /api/verification                     { verification: { deviceSigned, flow } | null }
 *   POST /api/verification                     → { flow }: asks the other devices; 409 one is running,
 *                                              or the account has no cross-signing identity
 *   POST /api/verification/{flowId}/accept     → { flow }: accepts the other device's request
 *   POST /api/verification/{flowId}/confirm    → { flow }: the emoji match
 *   POST /api/verification/{flowId}/cancel     → { flow }: they do not, or never mind
 *                                              404 not the flow in hand; 409 not now (the phase)
 */
import type { VerificationAnswer, VerificationStatus } from "@widgethost/homeserver-client"
import { type Route, segment, sendError, sendJson } from "./admin-http.ts"

/** What the service's verification offers the admin server (a `DeviceVerification`). */
export interface AdminVerification {
  status(): VerificationStatus
  request(): Promise<VerificationAnswer>
  accept(flowId: string): Promise<VerificationAnswer>
  confirm(flowId: string): Promise<VerificationAnswer>
  cancel(flowId: string): Promise<VerificationAnswer>
}

const ACTIONS = ["accept", "confirm", "cancel"] as const

const sendAnswer = (res: Parameters<Route["handle"]>[1], answer: VerificationAnswer) => {
  switch (answer._tag) {
    case "Ok":
      return sendJson(res, 200, { flow: answer.verification })
    case "NotFound":
      return sendError(res, "NotFound", answer.message)
    case "Refused":
      return sendError(res, "Conflict", answer.message)
  }
}

/** The route for `/api/verification[/{flowId}/{action}]`, "malformed" for a bad segment, undefined for none. */
export const verificationRoute = (verification: AdminVerification | undefined, rawId: string | undefined, action: string | undefined): Route | "malformed" | undefined => {
  if (rawId === undefined) {
    return {
      methods: verification === undefined ? ["GET"] : ["GET", "POST"],
      queryToken: false,
      handle: async (req, res) => {
        if (req.method === "GET") return sendJson(res, 200, { verification: verification?.status() ?? null })
        req.resume() // any body is ignored
        sendAnswer(res, await verification!.request())
      }
    }
  }
  const act = ACTIONS.find((a) => a === action)
  if (verification === undefined || act === undefined) return undefined
  const flowId = segment(rawId)
  if (flowId === undefined) return "malformed"
  return {
    methods: ["POST"],
    queryToken: false,
    handle: async (req, res) => {
      req.resume()
      sendAnswer(res, await verification[act](flowId))
    }
  }
}

/** The console's part of the "Device trust" section (ids the script fills in). */
export const VERIFICATION_SECTION = `<div id="verification"></div>`

/** The section's script, run inside the console page's scope (`api`, `h`, `$`, `showError`, `schedule`). */
export const VERIFICATION_SCRIPT = `
  // ---- verification: SAS emoji with another of the account's devices
  const verificationButton = (text, path, cls) => h("button", { type: "button", class: cls, text, "data-verification": text.toLowerCase(), onclick: async (event) => {
    event.currentTarget.disabled = true;
    try { await api("POST", path); } catch (e) { showError(e.message); }
    schedule("verification");
    schedule("identity");
  } });
  const renderVerification = async () => {
    const { verification: v } = await api("GET", "/api/verification");
    const box = $("verification");
    if (v === null) return box.replaceChildren();
    const f = v.flow;
    const base = f === null ? "" : "/api/verification/" + encodeURIComponent(f.flowId) + "/";
    const running = f !== null && f.phase !== "done" && f.phase !== "cancelled";
    const parts = [];
    if (!v.deviceSigned) parts.push(h("p", { id: "device-unverified", class: "warn", text: "This device is unverified until you verify it from another of your devices (or give the account's recovery key). Until then, clients that exclude unverified devices neither share keys with it nor read what it sends." }));
    else parts.push(h("p", { id: "device-signed", text: "This device is signed by the account's identity." }));
    if (f !== null) {
      const who = f.otherDeviceId === null ? "your other devices" : "device " + f.otherDeviceId;
      const says = {
        requested: f.direction === "incoming" ? who + " asks to verify this device." : "Asked " + who + " to verify this device; accept there.",
        ready: "Waiting for " + who + " to start emoji verification.",
        started: "Exchanging keys with " + who + "…",
        emoji: "Compare these emoji with the ones " + who + " shows. Confirm only if they are the same, in the same order.",
        confirmed: "Confirmed; waiting for " + who + " to confirm.",
        done: "Verified with " + who + ".",
        cancelled: "Verification cancelled" + (f.cancelled ? " (" + (f.cancelled.byUs ? "here" : "by the other device") + ": " + f.cancelled.reason + ", " + f.cancelled.code + ")" : "") + "."
      };
      parts.push(h("p", { id: "verification-phase", "data-phase": f.phase, text: says[f.phase] || f.phase }));
      if (f.emoji !== null) parts.push(h("ol", { id: "verification-emoji", class: "emoji" }, f.emoji.map((e) => h("li", {}, [h("span", { class: "symbol", text: e.symbol }), h("span", { class: "name", text: e.name })]))));
      const actions = [];
      if (f.phase === "requested" && f.direction === "incoming") actions.push(verificationButton("Accept", base + "accept", "primary"));
      if (f.phase === "emoji") actions.push(verificationButton("Confirm", base + "confirm", "primary"));
      if (running) actions.push(verificationButton("Cancel", base + "cancel"));
      if (actions.length > 0) parts.push(h("div", {}, actions.flatMap((a) => [a, " "])));
    }
    if (!v.deviceSigned && !running) parts.push(h("div", {}, [verificationButton("Verify", "/api/verification", "primary"), " ", h("span", { class: "muted", text: "asks your other devices (Element: accept, then compare emoji)" })]));
    box.replaceChildren(...parts);
  };
`

export const VERIFICATION_STYLE = `
#verification .warn { color: var(--warn) }
#verification ol.emoji { display: flex; flex-wrap: wrap; gap: .8em; list-style: none; padding: 0; margin: .4em 0 }
#verification ol.emoji li { display: flex; flex-direction: column; align-items: center; min-width: 4.5em }
#verification ol.emoji .symbol { font-size: 2em; line-height: 1.2 }
`
