// Namespaces and their repositories, each with its newest build.

import { api } from "./api.js";
import { errorNotice, every, h, replaceKeepingFocus } from "./dom.js";
import { buildDuration, phaseBadge, route, shortId, tagList, timeEl } from "./format.js";

export function homePage() {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const updated = h("p", { class: "updated", "aria-live": "off" });
  const el = h("section", {},
    h("div", { class: "build-head" },
      h("h1", {}, "Repositories"),
      h("a", { class: "button primary", href: route.newBuild() }, "Start a build")),
    updated, body);

  const refresh = async () => {
    let data;
    try {
      data = await api("/api/v1/repository");
    } catch (e) {
      body.replaceChildren(errorNotice(e, "Could not list the repositories:"));
      return;
    }
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every 5 seconds.`;
    replaceKeepingFocus(body, render(data.repositories));
  };
  const stop = every(5000, refresh);
  return { el, title: "Repositories", destroy: stop };
}

function render(repositories) {
  if (!repositories.length) {
    return h("div", { class: "notice info" },
      "No builds yet. ", h("a", { href: route.newBuild() }, "Start the first one"),
      ", or with the CLI: ", h("code", {}, "slipway build DIR -t REGISTRY/NAMESPACE/REPO:TAG"), ".");
  }
  const byNamespace = new Map();
  for (const repo of repositories) {
    if (!byNamespace.has(repo.namespace)) byNamespace.set(repo.namespace, []);
    byNamespace.get(repo.namespace).push(repo);
  }
  const sections = [];
  for (const namespace of [...byNamespace.keys()].sort()) {
    const id = `ns-${namespace}`;
    sections.push(h("section", { "aria-labelledby": id },
      h("h2", { id }, "Namespace ", h("span", { class: "mono" }, namespace)),
      h("table", { class: "data cards" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Repository"),
          h("th", { scope: "col" }, "Newest build"),
          h("th", { scope: "col" }, "Phase"),
          h("th", { scope: "col" }, "Tags"),
          h("th", { scope: "col" }, "Started"),
          h("th", { scope: "col" }, "Duration"),
          h("th", { scope: "col", class: "num" }, "Active"),
          h("th", { scope: "col", class: "num" }, "Builds"))),
        h("tbody", {}, byNamespace.get(namespace).map(row)))));
  }
  return h("div", {}, sections);
}

function row(repo) {
  const b = repo.last_build;
  return h("tr", { dataset: { repository: `${repo.namespace}/${repo.name}` } },
    h("td", { "data-label": "Repository" },
      h("a", { href: route.repo(repo.namespace, repo.name) }, repo.name)),
    h("td", { "data-label": "Newest build" },
      b ? h("a", { href: route.build(repo.namespace, repo.name, b.id), class: "mono" }, shortId(b.id)) : "—"),
    h("td", { "data-label": "Phase" }, b ? phaseBadge(b.phase) : "—"),
    h("td", { "data-label": "Tags" }, b ? tagList(b.tags) : "—"),
    h("td", { "data-label": "Started" }, b ? timeEl(b.started) : "—"),
    h("td", { "data-label": "Duration" }, b ? buildDuration(b) : "—"),
    h("td", { "data-label": "Active", class: "num" }, String(repo.active_builds)),
    h("td", { "data-label": "Builds", class: "num" }, String(repo.build_count)));
}
