/**
 * The console's "Account" section: who the service is on Matrix, where the demo widgets open, and
 * how a second person signs in (`widgethost users add NAME`, or registering with the
 * registration token). Served as `GET /api/account`; the section's script is part of the console
 * page (admin-console-page.ts) and builds the DOM with `textContent` only.
 */

export interface AdminAccount {
  readonly userId: string
  readonly deviceId: string
  /** The homeserver's client-server URL, where other clients sign in. */
  readonly homeserver: string
  /** The demo widgets' links (websocket URI filled in); empty without the demo room. */
  readonly demo: ReadonlyArray<{ readonly id: string; readonly name: string; readonly url: string }>
  /** The command that creates a second account, with `NAME` to fill in; absent without the embedded homeserver. */
  readonly addUserCommand?: string
  /** What `/register` asks for; null when registration is open or the homeserver is not ours. */
  readonly registrationToken: string | null
}

/**
 * The `users add` command for this data directory, as a user types it in the checkout.
 *
 * @example addUserCommand(".widgethost") // "npm run widgethost -- users add NAME"
 */
export const addUserCommand = (dataDir: string): string =>
  `npm run widgethost -- users add NAME${dataDir === ".widgethost" ? "" : ` --data-dir ${/^[\w./-]+$/.test(dataDir) ? dataDir : JSON.stringify(dataDir)}`}`

/** The section's markup (ids the script fills in). */
export const ACCOUNT_SECTION = `<section aria-labelledby="h-account"><h2 id="h-account">Account</h2><div id="account" class="muted">…</div></section>`

/** The section's script, run inside the console page's scope (`api`, `h`, `$`). */
export const ACCOUNT_SCRIPT = `
  // ---- account: who the service is, the demo widgets, how a second user signs in
  const webLink = (url, text, attrs) => /^https?:\\/\\//i.test(url) ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text, ...(attrs || {}) }) : null;
  const renderAccount = async () => {
    const { account: a } = await api("GET", "/api/account");
    if (a === null) return $("account").replaceChildren(h("p", { class: "muted", text: "Not known." }));
    $("account").className = "";
    $("account").replaceChildren(
      h("div", {}, [h("span", { class: "muted", text: "Host account " }), h("code", { id: "account-user", text: a.userId }), " ", h("span", { class: "muted mono", text: a.deviceId })]),
      h("div", {}, [h("span", { class: "muted", text: "Homeserver " }), h("code", { text: a.homeserver })]),
      a.demo.length === 0 ? null : h("div", { class: "links" }, [h("span", { class: "muted", text: "Demo widgets " }), ...a.demo.map((d) => webLink(d.url, "open " + d.name, { "data-demo": d.id }))]),
      a.addUserCommand === undefined ? null : h("p", {}, ["Sign in as a second user: ", h("code", { id: "add-user", text: a.addUserCommand }), " creates @NAME in the demo room and prints its password and access token; sign in with them at the homeserver above."]),
      a.registrationToken === null ? null : h("p", {}, ["Or register in any Matrix client with the registration token ", h("code", { text: a.registrationToken }), "."]));
  };
`
