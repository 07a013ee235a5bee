// The build manager at a glance: workers per executor, queue per namespace, and the
// failures of the last hours in two places: builds that failed by their own error (their
// owners' to fix) apart from attempts the service failed (an operator's to look at).

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
  const reasons = data.failures.reasons;
  return h("div", {}, workers, queue,
    userErrors(reasons.filter((f) => f.kind === "user"), data.failures.user_errors, hours),
    infrastructureFailures(reasons.filter((f) => f.kind !== "user"),
      data.failures.infrastructure_failures, hours));
}

const plural = (n, one, many) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

function buildLink(f) {
  return h("a", { href: route.build(f.namespace, f.repository, f.id) },
    `${f.namespace}/${f.repository} ${f.id.slice(0, 8)}`);
}

// one row per failed build, newest first: each has its own mistake to read
function userErrors(groups, count, hours) {
  const recent = groups.flatMap((g) => g.recent).sort((a, b) => b.ended - a.ended);
  return h("section", { "aria-labelledby": "user-errors-title", class: "failures", id: "user-errors" },
    h("h2", { id: "user-errors-title" }, `Build errors: ${plural(count, "build", "builds")}, last ${hours} hours`),
    h("p", { class: "small muted" }, "Builds that failed by their own error (phase ",
      h("code", {}, "error"), "): a Dockerfile step, the context, a base image, the push. ",
      "The build's log says what to fix; the service is not at fault."),
    table("Builds that failed by their own error, newest first",
      [["Build"], ["Error"], ["Executor"], ["Ended"]],
      recent.map((f) => [buildLink(f), f.error ? h("span", { class: "error-text" }, f.error) : "—",
        f.executor || "—", timeEl(f.ended)]),
      "No build failed by its own error."),
    recent.length < count
      ? h("p", { class: "small muted" }, `The newest ${recent.length} of ${count.toLocaleString()}.`) : null);
}

// grouped by reason: many attempts fail the same way when a node or an executor is sick
function infrastructureFailures(groups, count, hours) {
  return h("section", { "aria-labelledby": "infrastructure-title", class: "failures", id: "infrastructure-failures" },
    h("h2", { id: "infrastructure-title" },
      `Infrastructure failures: ${plural(count, "attempt", "attempts")}, last ${hours} hours`),
    h("p", { class: "small muted" }, "Attempts the service failed: a worker that never ",
      "registered or stopped sending heartbeats, an executor that could not start one, a ",
      "manager that went away or was stopped, a build past MACHINE_MAX_TIME. Such an ",
      "attempt is retried while the build has tries left."),
    table("Infrastructure failures by reason",
      [["Reason"], ["Count", "num"], ["Executors"], ["Last"], ["Newest"]],
      groups.map((f) => [
        h("span", {}, h("strong", {}, f.reason), h("br"), h("span", { class: "small muted" }, f.description)),
        String(f.count),
        Object.entries(f.executors).map(([name, n]) => `${name}: ${n}`).join(", "),
        timeEl(f.last),
        h("span", {}, buildLink(f.example),
          f.example.error ? h("span", { class: "small" }, h("br"), f.example.error) : null),
      ]),
      "No attempt failed for the service's reasons."));
}
