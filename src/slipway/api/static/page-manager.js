// The build manager at a glance: workers per executor, queue per namespace, failures.

import { api } from "./api.js";
import { errorNotice, every, h, replaceKeepingFocus } from "./dom.js";
import { route, timeEl } from "./format.js";

export function managerPage() {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const updated = h("p", { class: "updated" });
  const el = h("section", {}, h("h1", {}, "Build manager"), updated, body);
  const refresh = async () => {
    let data;
    try {
      data = await api("/api/v1/manager");
    } catch (e) {
      body.replaceChildren(errorNotice(e, "Could not read the manager's state:"));
      return;
    }
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every 5 seconds.`;
    replaceKeepingFocus(body, render(data));
  };
  const stop = every(5000, refresh);
  return { el, title: "Build manager", destroy: stop };
}

function table(caption, headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("table", { class: "data cards" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, headers.map(([name, cls]) => h("th", { scope: "col", class: cls }, name)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) =>
      h("td", { "data-label": headers[i][0], class: headers[i][1] }, cell))))));
}

function render(data) {
  const w = data.workers;
  const allowed = w.allowed_worker_count;
  const workers = h("section", { "aria-labelledby": "workers-title" },
    h("h2", { id: "workers-title" }, "Workers"),
    data.builds_enabled ? null
      : h("p", { class: "notice info" }, "This server runs no build manager (FEATURE_BUILD_SUPPORT is off, or BUILD_MANAGER is external)."),
    h("div", { class: "meter-row" },
      h("label", { for: "workers-meter" }, `${w.running} running`,
        allowed ? ` of ALLOWED_WORKER_COUNT ${allowed} per manager` : ""),
      allowed ? h("meter", { id: "workers-meter", min: "0", max: String(allowed), value: String(Math.min(w.running, allowed)) }) : null),
    table("Workers running per executor", [["Executor"], ["Kind"], ["Running", "num"], ["Of allowed", "num"]],
      w.by_executor.map((e) => [e.name, e.executor || "—", String(e.running), allowed ? String(allowed) : "—"]),
      "No executor is configured."));
  const queue = h("section", { "aria-labelledby": "queue-title" },
    h("h2", { id: "queue-title" }, "Queue by namespace"),
    table("Queued builds per namespace",
      [["Namespace"], ["Waiting", "num"], ["Retrying", "num"], ["Running", "num"], ["Limit", "num"]],
      data.queue.map((q) => [q.namespace, String(q.waiting), String(q.retrying), String(q.running),
        q.limit ? String(q.limit) : "—"]),
      "The queue is empty."));
  const hours = Math.round((Date.now() / 1000 - data.failures.since) / 3600);
  const failures = h("section", { "aria-labelledby": "failures-title" },
    h("h2", { id: "failures-title" }, `Failed attempts, last ${hours} hours`),
    table("Failed attempts by reason",
      [["Reason"], ["Count", "num"], ["Executors"], ["Last"], ["Newest"]],
      data.failures.reasons.map((f) => [
        h("span", {}, h("strong", {}, f.reason), h("br"), h("span", { class: "small muted" }, f.description)),
        String(f.count),
        Object.entries(f.executors).map(([name, n]) => `${name}: ${n}`).join(", "),
        timeEl(f.last),
        h("span", {},
          h("a", { href: route.build(f.example.namespace, f.example.repository, f.example.id) },
            `${f.example.namespace}/${f.example.repository} ${f.example.id.slice(0, 8)}`),
          f.example.error ? h("span", { class: "small" }, h("br"), f.example.error) : null),
      ]),
      "No attempt failed."));
  return h("div", {}, workers, queue, failures);
}
