/*
 * The console's "Homeserver health" section (`GET /api/homeserver`): the `/sync` connection first
 * (its state, the time since the last sync and how far behind the last events were, the backoff
 * and retries, errors by kind, the last error), then what waits for a room key and what could not
 * be decrypted. The lag grows on its own during an outage, so the section re-reads every few
 * seconds while the page is visible, besides the `homeserver` change events. Part of the console
 * page's one script (admin-console-page.ts), built with `textContent` only.
 */

export const HEALTH_SECTION = `<section aria-labelledby="h-homeserver"><h2 id="h-homeserver">Homeserver health</h2><div id="homeserver"></div></section>`

export const HEALTH_STYLE = `
#homeserver dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .15em .8em; margin: 0 0 .5em }
#homeserver dt { color: var(--muted) }
#homeserver dd { margin: 0; min-width: 0; overflow-wrap: anywhere }
.sync-state { font-weight: 600 }
.sync-state.connected { color: var(--ok) }
.sync-state.retrying, .sync-state.starting { color: var(--warn) }
.sync-state.halted, .sync-state.stopped { color: var(--bad) }
#homeserver .counters-line { overflow-wrap: anywhere }`

export const HEALTH_SCRIPT = `
  // ---- homeserver health: the sync connection, then keys and what could not be decrypted
  const duration = (ms) => {
    if (ms === null || ms === undefined) return "—";
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    const minutes = Math.floor(ms / 60000);
    return minutes + " min " + Math.round((ms % 60000) / 1000) + " s";
  };
  const STATE_WORDS = { starting: "starting (no sync yet)", connected: "connected", retrying: "retrying", halted: "halted: the access token was refused", stopped: "stopped" };
  const connectionFacts = (c) => {
    const errors = Object.keys(c.errors).map((k) => k + " " + c.errors[k]).join(" · ");
    const backoff = c.backoff === null ? "" : " · next try in " + duration(c.backoff.retryInMs) + " (wait " + duration(c.backoff.ms) + ")";
    return [
      ["Sync", h("span", { class: "sync-state " + c.state, "data-sync-state": c.state, text: STATE_WORDS[c.state] || c.state })],
      ["Last sync", c.lastSyncAt === null ? "never" : duration(c.lastSyncAgoMs) + " ago"],
      ["Behind", c.behindMs === null ? "—" : duration(c.behindMs) + " (newest event of the last batch, when handed over)"],
      ["Retries", c.retries + " after backoff · " + c.failuresInRow + " failed in a row" + backoff + " · HTTP retries " + c.httpRetries],
      ["Errors", errors === "" ? "none" : errors],
      c.lastError === null ? null : ["Last error", time(c.lastError.at) + " " + c.lastError.kind + ": " + c.lastError.message]
    ];
  };
  const renderHomeserver = async () => {
    const { homeserver: hs } = await api("GET", "/api/homeserver");
    if (hs === null) return $("homeserver").replaceChildren(h("p", { class: "muted", text: "Not connected yet." }));
    const facts = [
      ...(hs.connection === null ? [] : connectionFacts(hs.connection)),
      ["Waiting for keys", hs.held + (hs.held === 0 ? "" : " room events (undecryptable for now; delivered when their key arrives)")]
    ].filter((f) => f !== null);
    const rows = facts.flatMap(([term, value]) => [h("dt", { text: term }), h("dd", { "data-fact": term }, [value])]);
    const line = "syncs " + hs.syncs + " · sync errors " + hs.syncErrors + " · delivered " + hs.delivered + " (decrypted " + hs.decrypted + ", late " + hs.lateDelivered + ")";
    const bad = hs.undecryptable + hs.toDeviceUndecryptable;
    $("homeserver").replaceChildren(
      h("dl", { id: "sync-health" }, rows),
      h("div", { class: "mono counters-line", text: line }),
      h("div", { id: "undecryptable", class: bad === 0 ? "muted" : "", text: bad === 0 ? "Nothing undecryptable." : "Could not decrypt: " + hs.undecryptable + " room events, " + hs.toDeviceUndecryptable + " to-device messages. Widgets reading these rooms are told (read_events io.widgethost.withheld)." }),
      ...hs.recentUndecryptable.map((r) => h("div", { class: "mono muted url", text: r.at + " " + r.roomId + " " + r.eventId + " " + r.kind + ": " + r.reason })));
  };
  // The lag grows without any event saying so: re-read while someone looks.
  setInterval(() => { if (document.visibilityState === "visible" && token !== "") schedule("homeserver"); }, 3000);
`
