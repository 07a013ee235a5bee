// One repository's builds, newest first, filtered by phase; refreshed every few seconds.

import { api, repoPath } from "./api.js";
import { errorNotice, every, h, replaceKeepingFocus } from "./dom.js";
import { triggersPanel } from "./triggers.js";
import {
  buildDuration, phaseBadge, route, shortDigest, shortId, tagList, timeEl,
} from "./format.js";

export const PHASE_FILTERS = [
  ["all", "All", null],
  ["active", "Active", "waiting,build-scheduled,unpacking,pulling,building,pushing"],
  ["complete", "Complete", "complete"],
  ["failed", "Failed", "error,internalerror"],
  ["cancelled", "Cancelled", "cancelled"],
];

export function repoPage(namespace, repository, query) {
  let filter = PHASE_FILTERS.some(([k]) => k === query.get("phase")) ? query.get("phase") : "all";
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const updated = h("p", { class: "updated" });
  const radios = PHASE_FILTERS.map(([key, label]) => {
    const input = h("input", { type: "radio", name: "phase", value: key, checked: key === filter });
    input.addEventListener("change", () => {
      location.hash = route.repo(namespace, repository, key === "all" ? null : key);
    });
    return h("label", {}, input, label);
  });
  const el = h("section", {},
    h("p", { class: "small" }, h("a", { href: route.home() }, "Repositories"), " / ", namespace),
    h("div", { class: "build-head" },
      h("h1", {}, `${namespace}/${repository}`),
      h("a", { class: "button primary", href: route.newBuild(namespace, repository) },
        "Start a build")),
    h("fieldset", { class: "filters" }, h("legend", {}, "Phase"), radios),
    updated, body, triggersPanel(namespace, repository));

  const refresh = async () => {
    const phases = PHASE_FILTERS.find(([k]) => k === filter)[2];
    const params = new URLSearchParams({ limit: "50" });
    if (phases) params.set("phase", phases);
    let data;
    try {
      data = await api(`${repoPath(namespace, repository)}/build/?${params}`);
    } catch (e) {
      body.replaceChildren(errorNotice(e, "Could not list the builds:"));
      return;
    }
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every 3 seconds.`;
    replaceKeepingFocus(body, render(namespace, repository, data.builds, filter));
  };
  let stop = every(3000, refresh);
  return {
    el,
    title: `${namespace}/${repository}`,
    update(target) {
      const next = new URLSearchParams(location.hash.split("?")[1] || "").get("phase") || "all";
      if (next === filter) return;
      filter = PHASE_FILTERS.some(([k]) => k === next) ? next : "all";
      for (const label of radios) {
        const input = label.querySelector("input");
        input.checked = input.value === filter;
      }
      stop();
      stop = every(3000, refresh);
    },
    destroy: () => stop(),
  };
}

function render(namespace, repository, builds, filter) {
  if (!builds.length) {
    return h("p", { class: "notice info" },
      filter === "all" ? "This repository has no builds." : "No builds in these phases.");
  }
  return h("table", { class: "data cards" },
    h("caption", { class: "visually-hidden" }, `Builds of ${namespace}/${repository}, newest first`),
    h("thead", {}, h("tr", {},
      ["Build", "Phase", "Tags", "Executor", "Attempts", "Started", "Duration", "Digest", "Started by"]
        .map((name) => h("th", { scope: "col", class: name === "Attempts" ? "num" : null }, name)))),
    h("tbody", {}, builds.map((b) => h("tr", { dataset: { build: b.id } },
      h("td", { "data-label": "Build" },
        h("a", { href: route.build(namespace, repository, b.id), class: "mono" }, shortId(b.id))),
      h("td", { "data-label": "Phase" }, phaseBadge(b.phase)),
      h("td", { "data-label": "Tags" }, tagList(b.tags)),
      h("td", { "data-label": "Executor" }, b.executor || "—"),
      h("td", { "data-label": "Attempts", class: "num" }, String((b.attempts || []).length)),
      h("td", { "data-label": "Started" }, timeEl(b.started)),
      h("td", { "data-label": "Duration" }, buildDuration(b)),
      h("td", { "data-label": "Digest" }, shortDigest(b.image_digest)),
      h("td", { "data-label": "Started by" }, b.manual_user || "—")))));
}
