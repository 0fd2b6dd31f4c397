/**
 * The console's "Message log" section: the selected session's traffic, or with a widget chosen
 * every session of that widget (`GET /api/log?widget=`), filtered by action, direction and
 * errors only. The filters are the log API's query parameters (admin-log.ts), so what the page
 * shows is what the server chose. A line says when bodies are redacted and how to show them.
 * Runs inside the page's script (admin-console-page.ts): `h`, `$`, `api`, `time`, `selected`
 * and `schedule` are its.
 */

export const LOG_STYLE = `
#log-filters { display: flex; flex-wrap: wrap; gap: .4em 1em; align-items: center; margin: 0 0 .4em }
#log-filters label { display: inline-flex; gap: .3em; align-items: center; word-break: normal }
#log-filters input[type=text] { width: 14em; max-width: 100% }
#log-filters select { max-width: 16em }
#log-redacted { margin: 0 0 .4em }
`

export const LOG_SECTION = `<section class="wide" aria-labelledby="h-log"><h2 id="h-log">Message log <span id="log-session" class="muted"></span></h2>
<div id="log-filters" role="group" aria-label="Log filters">
<label>Widget <select id="log-widget"><option value="">the selected session</option></select></label>
<label>Action <input id="log-action" type="text" placeholder="send_event, read_events" autocomplete="off"></label>
<label>Direction <select id="log-direction"><option value="">both</option><option value="in">widget → host</option><option value="out">host → widget</option></select></label>
<label><input id="log-errors" type="checkbox"> Errors only</label>
</div>
<p id="log-redacted" class="muted" hidden>Message bodies, tokens and passwords are hidden; start the service with <code>--log-content</code> to show them.</p>
<div id="log"></div></section>`

export const LOG_SCRIPT = `
  // ---- message log: the selected session, or every session of the chosen widget, filtered
  const summary = (m) => {
    if (m === null || typeof m !== "object") return "";
    const parts = [m.api, m.action].filter((x) => typeof x === "string");
    if ("response" in m) parts.push(m.response && typeof m.response === "object" && "error" in m.response ? "error" : "response");
    return parts.join(" ");
  };
  const logWidget = () => $("log-widget").value;
  /** Whether a message of this session may change what the log shows. */
  const logWants = (sessionId) => logWidget() !== "" || sessionId === selected;
  /** The widget choices follow the hosted widgets; a choice that disappears falls back to the session. */
  const setLogWidgets = (widgets) => {
    const select = $("log-widget");
    const current = select.value;
    const ids = [...new Set(widgets.map((w) => w.id))];
    select.replaceChildren(h("option", { value: "", text: "the selected session" }), ...ids.map((id) => h("option", { value: id, text: id })));
    select.value = ids.includes(current) ? current : "";
    if (select.value !== current) schedule("log");
  };
  const logQuery = () => {
    const q = new URLSearchParams();
    if (logWidget() !== "") q.set("widget", logWidget());
    const action = $("log-action").value.split(",").map((a) => a.trim()).filter((a) => a !== "").join(",");
    if (action !== "") q.set("action", action);
    if ($("log-direction").value !== "") q.set("direction", $("log-direction").value);
    if ($("log-errors").checked) q.set("errors", "1");
    const text = q.toString();
    return text === "" ? "" : "?" + text;
  };
  for (const id of ["log-widget", "log-direction", "log-errors"]) $(id).addEventListener("change", () => schedule("log"));
  $("log-action").addEventListener("input", () => schedule("log"));
  const renderLog = async () => {
    const box = $("log");
    const widget = logWidget();
    const id = selected;
    const view = widget !== "" ? "widget " + widget + " (all its sessions)" : id === null ? "(choose a session or a widget)" : id;
    $("log-session").textContent = view;
    if (widget === "" && id === null) return box.replaceChildren();
    const query = logQuery();
    let data;
    try {
      data = await api("GET", (widget !== "" ? "/api/log" : "/api/sessions/" + encodeURIComponent(id) + "/log") + query);
    } catch (e) {
      if ($("log-session").textContent === view) box.replaceChildren(h("p", { class: "muted", text: e.message }));
      return;
    }
    // the view or filters changed while this was in flight: the next render draws it
    if ($("log-session").textContent !== view || logQuery() !== query) return;
    $("log-redacted").hidden = data.redacted !== true;
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.replaceChildren(...(data.entries.length === 0 ? [h("p", { class: "muted", text: query === "" ? "No messages yet." : "No messages match the filters." })] : data.entries.map((e) =>
      h("div", { class: "entry " + e.direction, "data-direction": e.direction }, [
        h("span", { class: "muted mono", text: time(e.at) }),
        h("span", { class: "dir", text: e.direction === "in" ? "widget → host" : "host → widget" }),
        h("div", {}, [
          e.sessionId === undefined ? null : h("span", { class: "muted mono", text: e.sessionId + " " }),
          h("strong", { text: summary(e.message) }), " ", h("code", { text: JSON.stringify(e.message) })
        ])
      ]))));
    if (atBottom) box.scrollTop = box.scrollHeight;
  };
`
