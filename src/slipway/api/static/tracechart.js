// A build's trace (docs/traces.md) as a timeline: one row per span, indented under its
// parent, its bar placed on the build's time from submit to end; the worker's spans
// marked as such, cached steps and cache hits said in words (not by colour alone).

import { h } from "./dom.js";

// milliseconds below a second, then seconds with one decimal
export function spanTime(seconds) {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)}m ${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
}

// the spans in tree order (a parent before its children, children by start), with depth
function inTreeOrder(spans) {
  const byParent = new Map();
  const ids = new Set(spans.map((s) => s.span_id));
  for (const span of spans) {
    const parent = span.parent_span_id && ids.has(span.parent_span_id) ? span.parent_span_id : null;
    if (!byParent.has(parent)) byParent.set(parent, []);
    byParent.get(parent).push(span);
  }
  const rows = [];
  const walk = (parent, depth) => {
    for (const span of (byParent.get(parent) || []).sort((a, b) => a.start - b.start)) {
      rows.push({ span, depth });
      walk(span.span_id, depth + 1);
    }
  };
  walk(null, 0);
  return rows;
}

function notes(span) {
  const a = span.attributes || {};
  const out = [];
  if (a["slipway.step.cached"] === true) out.push("cached");
  if (a["slipway.cache.hit"] === true) out.push("hit");
  if (a["slipway.cache.hit"] === false) out.push("miss");
  if (a["slipway.queue.reason"]) out.push(`waited for: ${a["slipway.queue.reason"]}`);
  if (a["slipway.executor"]) out.push(a["slipway.executor"]);
  if (span.status === "error") out.push("failed");
  return out;
}

function title(span) {
  const a = span.attributes || {};
  const what = a["slipway.step.instruction"] || a["slipway.image"] || a["slipway.target"] || "";
  return what ? `${span.name}: ${what}` : span.name;
}

export function traceChart(trace) {
  const spans = trace.spans || [];
  if (!spans.length) return h("p", { class: "muted" }, "No span has been kept for this build.");
  const t0 = Math.min(...spans.map((s) => s.start));
  const t1 = Math.max(...spans.map((s) => s.end));
  const total = Math.max(t1 - t0, 1e-6);
  const rows = inTreeOrder(spans).map(({ span, depth }) => {
    const left = ((span.start - t0) / total) * 100;
    const width = Math.max(((span.end - span.start) / total) * 100, 0.4);
    const worker = span.service === "slipway-worker";
    const extra = notes(span);
    // placed through the CSSOM: the page's Content-Security-Policy refuses style attributes
    const bar = h("span", { class: "span-bar" });
    bar.style.left = `${left.toFixed(2)}%`;
    bar.style.width = `${width.toFixed(2)}%`;
    const row = h("li", {
      class: `span${worker ? " worker" : ""}${span.status === "error" ? " failed" : ""}`,
      title: title(span),
      dataset: { name: span.name },
    },
    h("span", { class: "span-label" },
      h("span", { class: "span-name" }, span.name),
      " ", h("span", { class: "span-time" }, spanTime(span.end - span.start)),
      extra.length ? h("span", { class: "span-notes" }, ` · ${extra.join(" · ")}`) : null),
    h("span", { class: "span-track", "aria-hidden": "true" }, bar));
    row.style.setProperty("--depth", String(Math.min(depth, 6)));
    return row;
  });
  return h("div", { class: "trace" },
    h("p", { class: "small muted" },
      `${spans.length} spans over ${spanTime(total)}`,
      trace.complete ? "" : " (the build has not ended: more come)",
      " · ", h("span", { class: "legend manager" }, "manager"),
      " ", h("span", { class: "legend worker" }, "worker")),
    h("ol", { class: "trace-rows", "aria-label": "Spans of the build's trace" }, rows));
}
