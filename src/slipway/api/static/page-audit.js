// The audit log: who did what, from where; filtered, and exported as JSON Lines.

import { api, authHeaders, errorFrom, networkError } from "./api.js";
import { errorNotice, h } from "./dom.js";

const AUDIT = "/api/v1/slipway/audit/";
const ACTIONS = ["build.start", "build.cancel", "build.rebuild", "token.create", "token.revoke",
  "auth.sign_in", "auth.failed", "auth.sign_out", "trigger.create", "trigger.update", "trigger.delete",
  "trigger.run"];

function input(id, label, attrs) {
  const el = h("input", { id, type: "text", autocomplete: "off", spellcheck: "false", ...attrs });
  return [h("div", { class: "field" }, h("label", { for: id }, label), el), el];
}

export function auditPage(query) {
  const [nsField, namespace] = input("audit-namespace", "Namespace", { value: query.get("namespace") || "" });
  const [actorField, actor] = input("audit-actor", "Actor", { value: query.get("actor") || "" });
  const action = h("select", { id: "audit-action" }, h("option", { value: "" }, "any"),
    ACTIONS.map((a) => h("option", { value: a, selected: query.get("action") === a }, a)));
  const [sinceField, since] = input("audit-since", "From (date)", { type: "date" });
  const [untilField, until] = input("audit-until", "Before (date)", { type: "date" });
  const results = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const exportButton = h("button", { type: "button", class: "button subtle" }, "Export JSON Lines");
  const form = h("form", { class: "audit-filters", novalidate: true, "aria-label": "Filter the audit log" },
    nsField, actorField, h("div", { class: "field" }, h("label", { for: "audit-action" }, "Action"), action),
    sinceField, untilField,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button primary" }, "Filter"),
      exportButton));
  const el = h("section", {}, h("h1", {}, "Audit log"),
    h("p", { class: "muted" }, "Who did what, from where, oldest first. Needs an admin token."),
    form, results);

  const params = () => {
    const p = new URLSearchParams();
    if (namespace.value.trim()) p.set("namespace", namespace.value.trim());
    if (actor.value.trim()) p.set("actor", actor.value.trim());
    if (action.value) p.set("action", action.value);
    if (since.value) p.set("since", String(Date.parse(`${since.value}T00:00:00Z`) / 1000));
    if (until.value) p.set("until", String(Date.parse(`${until.value}T00:00:00Z`) / 1000));
    return p;
  };
  const load = async () => {
    const p = params();
    p.set("limit", "500");
    try {
      const page = await api(`${AUDIT}?${p}`);
      results.replaceChildren(render(page.entries, page.next_after));
    } catch (e) {
      results.replaceChildren(errorNotice(e, "Could not read the audit log:"));
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  exportButton.addEventListener("click", async () => {
    let response;
    try {
      response = await fetch(`${AUDIT}export?${params()}`, { headers: authHeaders(), cache: "no-store" });
    } catch (e) {
      results.prepend(errorNotice(networkError(e), "Could not export:"));
      return;
    }
    if (!response.ok) { results.prepend(errorNotice(await errorFrom(response), "Could not export:")); return; }
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: "slipway-audit.jsonl" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  load();
  return { el, title: "Audit log" };
}

function render(entries, more) {
  if (!entries.length) return h("p", { class: "muted" }, "No entries match.");
  const headers = ["Time (UTC)", "Actor", "Action", "Namespace", "Target", "From", "Details"];
  return h("div", {},
    h("table", { class: "data cards audit" },
      h("caption", { class: "visually-hidden" }, "Audit log entries"),
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, entries.map((e) => {
        const cells = [new Date(e.at * 1000).toISOString().slice(0, 19).replace("T", " "),
          e.actor, h("code", {}, e.action), e.namespace || "—", e.target ? e.target.slice(0, 8) : "—",
          e.source || "—", Object.keys(e.details).length ? JSON.stringify(e.details) : ""];
        return h("tr", {}, cells.map((c, i) => h("td", { "data-label": headers[i] }, c)));
      }))),
    more ? h("p", { class: "muted" }, "More entries match: narrow the filter, or export them all.") : null);
}
