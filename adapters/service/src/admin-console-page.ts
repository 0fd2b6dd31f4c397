import { createHash } from "node:crypto"
import { ACCOUNT_SCRIPT, ACCOUNT_SECTION } from "./admin-account.ts"
import { LOG_SCRIPT, LOG_SECTION, LOG_STYLE } from "./admin-console-log.ts"
import { VERIFICATION_SCRIPT, VERIFICATION_SECTION, VERIFICATION_STYLE } from "./admin-verification.ts"
import { HEALTH_SCRIPT, HEALTH_SECTION, HEALTH_STYLE } from "./admin-console-health.ts"


/*
 * One self-contained page: inline CSS and JS, no framework, nothing fetched from elsewhere. The
 * CSP allows exactly these two inline blocks (by hash) and requests to this server. Everything a
 * widget controls (ids, capability names, messages) reaches the DOM as `textContent`, never as
 * markup. The page reads the token from its own URL (`?token=`), sends it as a Bearer header with
 * every `fetch`, and follows `/api/events`: each `change` re-fetches what it names (one fetch in
 * flight per resource, a change during it fetches once more afterwards). Approval cards are keyed
 * by id and never rebuilt, so ticking boxes survives live updates.
 */

const PAGE_STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #5f6b7a; --line: #d0d7de; --accent: #0b62d6; --warn: #b35900; --bad: #c62828; --ok: #2e7d32; font: 14px/1.4 system-ui, sans-serif }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #8b949e; --line: #30363d; --accent: #4c8df6; --ok: #3fb950 } }
body { margin: 0; background: var(--bg); color: var(--fg) }
header { display: flex; flex-wrap: wrap; gap: 1em; align-items: baseline; padding: .6em 1em; border-bottom: 1px solid var(--line) }
header h1 { font-size: 1.1em; margin: 0 }
#status.live { color: var(--ok) }
#status.down, #error, .blocked { color: var(--bad) }
main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1em; padding: 1em }
section { min-width: 0 }
section.wide { grid-column: 1 / -1 }
h2 { font-size: 1em; margin: 0 0 .5em }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6em .8em; margin-bottom: .6em }
.card.approval { border-color: var(--warn) }
.card.decided { opacity: .6 }
fieldset { border: 0; margin: .4em 0; padding: 0 }
legend { color: var(--muted); padding: 0 }
label { display: block; word-break: break-all }
table { border-collapse: collapse; width: 100% }
th, td { text-align: left; padding: .3em .4em; border-bottom: 1px solid var(--line); vertical-align: top }
tr.selected { background: rgba(127, 127, 127, .15) }
.chips span { display: inline-block; border: 1px solid var(--line); border-radius: 3px; padding: 0 .3em; margin: 0 .2em .2em 0; word-break: break-all }
.chips .denied { text-decoration: line-through; color: var(--muted) }
.chips .pending { border-color: var(--warn) }
.muted { color: var(--muted) }
.url, #account code { overflow-wrap: anywhere }
.links a { margin-right: 1em }
code, .mono, .chips span { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace }
#log { max-height: 60vh; overflow: auto; border: 1px solid var(--line); border-radius: 6px }
.entry { display: grid; grid-template-columns: auto 7.5em minmax(0, 1fr); gap: .5em; padding: .2em .5em; border-bottom: 1px solid var(--line) }
.entry code { white-space: pre-wrap; word-break: break-all }
.entry.in .dir { color: var(--accent) }
.entry.out .dir { color: var(--ok) }
button { font: inherit; padding: .15em .7em; cursor: pointer }
button.primary { background: var(--accent); color: #fff; border: 1px solid var(--accent); border-radius: 4px }
@media (max-width: 900px) { main { grid-template-columns: minmax(0, 1fr) } }
${LOG_STYLE}${VERIFICATION_STYLE}${HEALTH_STYLE}`

const PAGE_SCRIPT = `
"use strict";
(() => {
  const token = new URLSearchParams(location.search).get("token") || "";
  const $ = (id) => document.getElementById(id);
  const h = (tag, attrs, children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children || []) if (child !== null && child !== undefined) node.append(child);
    return node;
  };
  const showError = (message) => { $("error").textContent = message || ""; };
  const setStatus = (text, cls) => { const s = $("status"); s.textContent = text; s.className = cls; };
  const time = (at) => {
    const d = new Date(at);
    return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  };
  const chips = (list, cls) => h("div", { class: "chips" }, list.map((c) => h("span", { class: cls, text: c, title: c })));

  const api = async (method, path, body) => {
    const init = { method, cache: "no-store", headers: { Authorization: "Bearer " + token } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) throw new Error((data && data.error && data.error.message) || res.status + " " + res.statusText);
    return data;
  };

  // ---- widgets
  const renderWidgets = async () => {
    const { widgets } = await api("GET", "/api/widgets");
    setLogWidgets(widgets);
    $("widgets").replaceChildren(...(widgets.length === 0 ? [h("p", { class: "muted", text: "None." })] : widgets.map((w) =>
      h("div", { class: "card", "data-widget-id": w.id }, [
        h("strong", { text: w.name || w.id }), " ", h("span", { class: "muted mono", text: w.id }),
        h("div", { class: "muted", text: w.transport + (w.roomId ? " · " + w.roomId : "") }),
        h("div", { class: "mono url", text: w.url }),
        webLink(w.url, "open in a browser", { "data-open": w.id }),
        w.blocked ? h("div", { class: "blocked", text: "Blocked: not hosted." }) : h("div", {}, [h("button", { type: "button", text: "Block", onclick: (event) => blockWidget(w, event.currentTarget) })])
      ]))));
  };
  const blockWidget = async (w, button) => {
    if (!confirm("Block widget " + (w.name || w.id) + "? Its session closes and it is not hosted again.")) return;
    button.disabled = true;
    try {
      await api("POST", "/api/widgets/block", w.roomId ? { id: w.id, roomId: w.roomId } : { id: w.id });
    } catch (e) {
      showError(e.message);
      button.disabled = false;
    }
    schedule("widgets");
    schedule("sessions");
  };

${ACCOUNT_SCRIPT}
  // ---- device trust (cross-signing, where the recovery key is)
  const renderIdentity = async () => {
    const { identity } = await api("GET", "/api/identity");
    $("identity").textContent = identity === null ? "Unknown." : identity.status + ": " + identity.detail;
    $("identity").className = identity !== null && identity.status === "cross-signed" ? "" : "muted";
  };
${VERIFICATION_SCRIPT}

${HEALTH_SCRIPT}
  // ---- sessions
  let selected = null;
  const renderSessions = async () => {
    const { sessions } = await api("GET", "/api/sessions");
    const body = $("sessions");
    if (sessions.length === 0) {
      body.replaceChildren(h("tr", {}, [h("td", { colspan: "5", class: "muted", text: "None." })]));
      return;
    }
    body.replaceChildren(...sessions.map((s) => {
      const counters = s.counters || {};
      const undecided = s.requested.filter((c) => !s.approved.includes(c) && !s.denied.includes(c));
      const group = (title, list, cls) => list.length === 0 ? null : h("div", {}, [h("span", { class: "muted", text: title }), chips(list, cls)]);
      return h("tr", { class: s.sessionId === selected ? "selected" : "", "data-session-id": s.sessionId }, [
        h("td", {}, [h("div", { class: "mono", text: s.sessionId }), h("div", { class: "muted", text: s.widgetId })]),
        h("td", {}, [h("div", { class: "state", text: s.state }), s.phase !== s.state ? h("div", { class: "muted", text: s.phase }) : null]),
        h("td", {}, [
          group("approved", s.approved, "approved"), group("denied", s.denied, "denied"), group("waiting", undecided, "pending"),
          s.requested.length === 0 ? h("span", { class: "muted", text: "none requested" }) : null
        ]),
        h("td", { class: "mono counters" }, Object.keys(counters).map((k) => h("div", { text: k + " " + counters[k] }))),
        h("td", {}, [
          h("button", { type: "button", text: s.sessionId === selected ? "Hide log" : "Log", onclick: () => select(s.sessionId) }), " ",
          h("button", { type: "button", text: "Close", onclick: (event) => closeSession(s.sessionId, event.currentTarget) })
        ])
      ]);
    }));
  };
  const select = (id) => {
    selected = selected === id ? null : id;
    schedule("sessions");
    schedule("log");
  };
  const closeSession = async (id, button) => {
    if (!confirm("Close session " + id + "?")) return;
    button.disabled = true;
    try {
      await api("POST", "/api/sessions/" + encodeURIComponent(id) + "/close");
    } catch (e) {
      showError(e.message);
      button.disabled = false;
    }
    schedule("sessions");
  };

${LOG_SCRIPT}
  // ---- approvals: cards keyed by id, never rebuilt (ticked boxes survive updates)
  const cards = new Map();
  const approvalCard = (a) => {
    const boxes = a.requested.map((c) => h("input", { type: "checkbox", checked: true, value: c }));
    const status = h("div", { class: "muted", role: "status" });
    const buttons = [];
    const send = async (decision) => {
      for (const b of buttons) b.disabled = true;
      status.textContent = "sending…";
      try {
        const result = await api("POST", "/api/approvals/" + encodeURIComponent(a.id), decision);
        status.textContent = "approved: " + (result.approved.length === 0 ? "nothing" : result.approved.join(", "));
        card.classList.add("decided");
        schedule("sessions");
      } catch (e) {
        status.textContent = e.message;
        for (const b of buttons) b.disabled = false;
      }
      schedule("approvals");
    };
    const approve = h("button", { type: "button", class: "primary", text: "Approve", onclick: () => send({
      approve: boxes.filter((b) => b.checked).map((b) => b.value),
      deny: boxes.filter((b) => !b.checked).map((b) => b.value)
    }) });
    const deny = h("button", { type: "button", text: "Deny", onclick: () => send({ deny: "all" }) });
    buttons.push(approve, deny);
    const card = h("div", { class: "card approval", "data-approval-id": a.id }, [
      h("div", {}, [h("strong", { class: "widget-name", text: a.widgetName || a.widgetId }), " ", h("span", { class: "muted mono", text: a.widgetId + " · " + a.sessionId })]),
      h("div", { class: "mono url widget-url", text: a.widgetUrl }),
      h("div", { class: "muted widget-origin", text: a.origin === null ? "origin: none (not a browser page)" : "origin: " + a.origin }),
      h("div", { class: "muted", text: "asked at " + time(a.createdAt) }),
      a.alreadyApproved.length === 0 ? null : h("div", {}, [h("span", { class: "muted", text: "already approved" }), chips(a.alreadyApproved, "approved")]),
      h("fieldset", {}, [h("legend", { text: "Approve these capabilities:" }), ...boxes.map((b, i) => h("label", {}, [b, " ", h("span", { text: (a.meanings || [])[i] || "" }), " ", h("span", { class: "mono muted", text: b.value })]))]),
      h("div", {}, [approve, " ", deny]),
      status
    ]);
    return card;
  };
  const renderApprovals = async () => {
    const { approvals } = await api("GET", "/api/approvals");
    const live = new Set(approvals.map((a) => a.id));
    for (const [id, card] of cards) if (!live.has(id)) { card.remove(); cards.delete(id); }
    for (const a of approvals) if (!cards.has(a.id)) { const card = approvalCard(a); cards.set(a.id, card); $("approvals").append(card); }
    $("approvals-empty").hidden = cards.size > 0;
    $("approval-count").textContent = cards.size === 0 ? "" : "(" + cards.size + ")";
  };

  // ---- live updates: one fetch in flight per resource; a change meanwhile fetches once more
  const refreshers = { account: renderAccount, identity: renderIdentity, verification: renderVerification, homeserver: renderHomeserver, widgets: renderWidgets, sessions: renderSessions, approvals: renderApprovals, log: renderLog };
  const running = {};
  const schedule = (name) => {
    const r = running[name] || (running[name] = { busy: false, again: false });
    if (r.busy) { r.again = true; return; }
    r.busy = true;
    Promise.resolve().then(refreshers[name]).catch((e) => showError(e.message)).finally(() => {
      r.busy = false;
      if (r.again) { r.again = false; schedule(name); }
    });
  };
  const refreshAll = () => { for (const name of Object.keys(refreshers)) schedule(name); };
  const connect = () => {
    const source = new EventSource("/api/events?token=" + encodeURIComponent(token));
    source.addEventListener("ready", () => { setStatus("live", "live"); showError(""); refreshAll(); });
    source.addEventListener("change", (event) => {
      let change;
      try { change = JSON.parse(event.data); } catch (_) { return; }
      if (change.kind === "message") {
        schedule("sessions");
        if (logWants(change.sessionId)) schedule("log");
      } else if (change.kind === "sessions") {
        schedule("sessions");
        if (selected !== null || logWidget() !== "") schedule("log");
      } else if (Object.prototype.hasOwnProperty.call(refreshers, change.kind)) schedule(change.kind);
    });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) return setStatus("reconnecting…", "down");
      setStatus("disconnected; retrying", "down");
      setTimeout(connect, 5000);
    });
  };
  if (token === "") return setStatus("no token: open this page as /?token=…", "down");
  refreshAll();
  connect();
})();
`

const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>widgethost console</title>
<link rel="icon" href="data:,">
<style>${PAGE_STYLE}</style>
</head>
<body>
<header><h1>widgethost console</h1><span id="status" class="down">connecting…</span><span id="error" role="alert"></span></header>
<main>
<section aria-labelledby="h-approvals"><h2 id="h-approvals">Pending approvals <span id="approval-count" class="muted"></span></h2><div id="approvals"><p id="approvals-empty" class="muted">None.</p></div></section>
${ACCOUNT_SECTION}
<section aria-labelledby="h-identity"><h2 id="h-identity">Device trust</h2><p id="identity" class="muted"></p>${VERIFICATION_SECTION}</section>
${HEALTH_SECTION}
<section aria-labelledby="h-widgets"><h2 id="h-widgets">Widgets</h2><div id="widgets"></div></section>
<section class="wide" aria-labelledby="h-sessions"><h2 id="h-sessions">Sessions</h2>
<table><thead><tr><th>Session</th><th>State</th><th>Capabilities</th><th>Counters</th><th></th></tr></thead><tbody id="sessions"></tbody></table></section>
${LOG_SECTION}
</main>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`

const cspHash = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`

/** The console page and its headers; the CSP admits only its own inline style and script. */
export const consolePage = (): { readonly html: string; readonly headers: Record<string, string> } => ({
  html: PAGE_HTML,
  headers: {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": [
      "default-src 'none'",
      `script-src ${cspHash(PAGE_SCRIPT)}`,
      `style-src ${cspHash(PAGE_STYLE)}`,
      "connect-src 'self'",
      "img-src data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'"
    ].join("; "),
    "X-Frame-Options": "DENY"
  }
})
