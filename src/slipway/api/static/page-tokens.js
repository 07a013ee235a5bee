// API tokens: make one (shown once), the list (never a token), revoke.

import { api } from "./api.js";
import { announce, errorNotice, h } from "./dom.js";
import { duration, timeEl, toDate } from "./format.js";

const TOKENS = "/api/v1/slipway/tokens/";
const LIFETIMES = [["30d", "30 days"], ["90d", "90 days"], ["365d", "a year"], ["12h", "12 hours"],
  ["", "until revoked"]];

// "team=write, docs=read" -> {team: "write", docs: "read"}; throws saying what is wrong
export function parseScopes(text) {
  const scopes = {};
  for (const raw of text.split(/[,\n]/)) {
    const part = raw.trim();
    if (!part) continue;
    const [ns, role] = part.split("=").map((s) => s.trim());
    if (!ns || !["read", "write", "admin"].includes(role)) {
      throw new Error(`scopes: ${JSON.stringify(part)} is not NAMESPACE=ROLE (ROLE: read, write or admin)`);
    }
    scopes[ns] = role;
  }
  if (!Object.keys(scopes).length) throw new Error("scopes: give at least one, e.g. team=read");
  return scopes;
}

const scopesText = (scopes) => Object.entries(scopes)
  .map(([ns, role]) => `${ns === "*" ? "all namespaces" : ns}: ${role}`).join(", ");

export function tokensPage() {
  const name = h("input", { id: "token-name", type: "text", required: true, autocomplete: "off",
    spellcheck: "false", placeholder: "ci-web" });
  const scopes = h("input", { id: "token-scopes", type: "text", required: true, autocomplete: "off",
    spellcheck: "false", placeholder: "team=write, docs=read", "aria-describedby": "token-scopes-hint" });
  const lifetime = h("select", { id: "token-lifetime" },
    LIFETIMES.map(([value, label]) => h("option", { value }, label)));
  const made = h("div", { id: "token-made" });
  const error = h("div");
  const button = h("button", { type: "submit", class: "button primary" }, "Create token");
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "new-token-title" },
    h("h2", { id: "new-token-title" }, "New token"),
    h("div", { class: "field" }, h("label", { for: "token-name" }, "Name"), name),
    h("div", { class: "field" }, h("label", { for: "token-scopes" }, "Scopes"), scopes,
      h("p", { class: "hint", id: "token-scopes-hint" },
        "NAMESPACE=ROLE, comma-separated (ROLE: read, write or admin; * for every namespace). ",
        "At most what you hold yourself.")),
    h("div", { class: "field" }, h("label", { for: "token-lifetime" }, "Expires after"), lifetime),
    error, h("div", { class: "actions" }, button));
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const el = h("section", {}, h("h1", {}, "API tokens"),
    h("p", { class: "muted" }, "Tokens for scripts and colleagues: each scoped to namespaces, ",
      "revocable alone. A token is shown once, when it is made."),
    made, form, h("h2", {}, "Tokens you manage"), list);

  const refresh = async () => {
    try {
      const data = await api(TOKENS);
      list.replaceChildren(render(data.tokens, refresh));
    } catch (e) {
      list.replaceChildren(errorNotice(e, "Could not list the tokens:"));
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.replaceChildren();
    let body;
    try {
      body = { name: name.value.trim(), scopes: parseScopes(scopes.value) };
      if (!body.name) throw new Error("name: give the token a name, e.g. ci-web");
    } catch (e) {
      error.replaceChildren(errorNotice(e, "Cannot create the token:"));
      return;
    }
    if (lifetime.value) body.expires_in = lifetime.value;
    button.disabled = true;
    try {
      const token = await api(TOKENS, { method: "POST", body });
      made.replaceChildren(h("div", { class: "notice info", role: "status" },
        h("p", {}, h("strong", {}, `Token ${token.name}`), ` (${scopesText(token.scopes)}). `,
          "Copy it now: it is not shown again."),
        h("input", { type: "text", readonly: true, value: token.token, class: "token-value",
          "aria-label": "The new token", onfocus: (e) => e.target.select() })));
      form.reset();
      announce(`Token ${token.name} created`);
      await refresh();
    } catch (e) {
      error.replaceChildren(errorNotice(e, "Cannot create the token:"));
    } finally {
      button.disabled = false;
    }
  });
  refresh();
  return { el, title: "API tokens" };
}

// a time to come: "in 89d 23h", its date in the tooltip; a past one as any time
function expiresEl(value) {
  const date = toDate(value);
  if (!date) return "never";
  if (date.getTime() <= Date.now()) return timeEl(value);
  return h("time", { datetime: date.toISOString(), title: date.toLocaleString() },
    `in ${duration((date.getTime() - Date.now()) / 1000)}`);
}

function render(tokens, refresh) {
  if (!tokens.length) return h("p", { class: "muted" }, "No tokens.");
  const headers = ["Name", "Scopes", "Created by", "Created", "Expires", "Last used", "State", ""];
  return h("table", { class: "data cards" },
    h("caption", { class: "visually-hidden" }, "Tokens you manage"),
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, tokens.map((t) => {
      const revoke = t.state === "active"
        ? h("button", { type: "button", class: "button subtle", "aria-label": `Revoke ${t.name}`,
          onclick: async (e) => {
            e.target.disabled = true;
            try {
              await api(`${TOKENS}${encodeURIComponent(t.id)}`, { method: "DELETE" });
              announce(`Token ${t.name} revoked`);
            } catch (err) {
              e.target.replaceWith(errorNotice(err, "Cannot revoke:"));
              return;
            }
            await refresh();
          } }, "Revoke")
        : null;
      const cells = [t.name, scopesText(t.scopes), t.created_by || "(server)", timeEl(t.created),
        expiresEl(t.expires), t.last_used ? timeEl(t.last_used) : "never",
        h("span", { class: `token-state state-${t.state}` }, t.state), revoke];
      return h("tr", {}, cells.map((c, i) => h("td", { "data-label": headers[i] }, c)));
    })));
}
