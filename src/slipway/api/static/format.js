// How times, durations, phases and builds are shown.

import { h } from "./dom.js";

export const FINAL = new Set(["complete", "error", "internalerror", "cancelled", "expired"]);
export const CANCELLABLE = new Set(["waiting", "build-scheduled", "unpacking", "pulling", "building"]);

// dates come as RFC 2822 (Quay's build object) or UNIX seconds
export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

export function ago(date) {
  if (!date) return "";
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 5) return "just now";
  return `${duration(seconds)} ago`;
}

export function timeEl(value) {
  const date = toDate(value);
  if (!date) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: date.toISOString(), title: date.toLocaleString() }, ago(date));
}

export function buildDuration(build) {
  const started = toDate(build.started);
  if (!started) return "";
  const end = toDate(build.completed) || (FINAL.has(build.phase) ? null : new Date());
  return end ? duration((end - started) / 1000) : "";
}

export function phaseBadge(phase) {
  return h("span", { class: `phase phase-${phase}` }, phase);
}

export function tagList(tags) {
  return h("ul", { class: "tags", "aria-label": "tags" }, (tags || []).map((t) => h("li", {}, t)));
}

export function shortDigest(digest) {
  if (!digest) return h("span", { class: "muted" }, "—");
  const [algo, hex] = digest.includes(":") ? digest.split(":", 2) : ["", digest];
  return h("code", { title: digest }, `${algo ? `${algo}:` : ""}${hex.slice(0, 12)}`);
}

export function shortId(id) { return id.slice(0, 8); }

// hash routes
export const route = {
  home: () => "#/",
  repo: (ns, repo, phase) => `#/repo/${encodeURIComponent(ns)}/${encodeURIComponent(repo)}`
    + (phase ? `?phase=${encodeURIComponent(phase)}` : ""),
  build: (ns, repo, id, line) => `#/build/${encodeURIComponent(ns)}/${encodeURIComponent(repo)}/`
    + `${encodeURIComponent(id)}${line ? `/L${line}` : ""}`,
  newBuild: (ns, repo) => (ns ? `#/new?repository=${encodeURIComponent(`${ns}/${repo}`)}` : "#/new"),
  manager: () => "#/manager",
};
