// One build: the live log first, with its summary, phase timeline and attempts beside it
// (below it on a narrow screen), each folding away; cancel and build again.
//
// The log opens at its end (the view follows the end, and a finished build's outcome is
// there): its first and last lines are asked for first and drawn, then the stream follows
// what comes after them while the lines between are loaded in pages in the background.

import { api, buildPath } from "./api.js";
import { announce, errorNotice, h } from "./dom.js";
import {
  buildDuration, CANCELLABLE, duration, FINAL, phaseBadge, route, tagList, timeEl, toDate,
} from "./format.js";
import { LogView } from "./logview.js";
import { followEvents } from "./sse.js";
import { traceChart } from "./tracechart.js";

// lines asked for first at each end of the log: more than a screen, a small answer
const EDGE_LINES = 500;
// lines per page of the background load: 20 requests for 100,000 lines, each parsed in
// a few milliseconds (one long task would stall scrolling)
const PAGE_LINES = 5000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function buildPage(namespace, repository, buildId, line) {
  const path = buildPath(namespace, repository, buildId);
  let build = null;
  let stream = null;
  let refreshTimer = null;
  let destroyed = false;
  let ended = false;  // the stream sent its end: every line is known (not all loaded yet)
  let streamState = "connecting…";
  const loading = new AbortController();  // the log's pages, stopped with the page
  const phases = [];  // { phase, at } from the log's phase entries
  // docs/signing.md: what was signed and attached, asked once the build is complete
  const signingEl = h("span", { id: "build-signing" }, "—");
  let signingAsked = false;

  const phaseEl = h("span", { id: "build-phase", "aria-live": "polite" });
  const notices = h("div", { id: "build-notices" });
  const summary = h("dl", { class: "summary" });
  const timeline = h("ol", { class: "timeline" });
  const attempts = h("div", {});
  const traceBox = h("div", { id: "build-trace" },
    h("p", { class: "muted" }, "The trace is shown when the build ends."));
  let traceShown = false;
  let traceTries = 0;
  const cancelButton = h("button", { type: "button", class: "button danger", hidden: true },
    "Cancel build");
  const againButton = h("button", { type: "button", class: "button" }, "Build again");
  const status = h("span", { class: "log-status", role: "status" }, "connecting…");
  const gotoInput = h("input", {
    id: "goto-line", type: "number", min: "1", inputmode: "numeric", name: "line",
  });
  const gotoForm = h("form", { role: "search", "aria-label": "Go to a line of the log" },
    h("label", { for: "goto-line" }, "Go to line"), gotoInput,
    h("button", { type: "submit", class: "button" }, "Go"));
  const errorButton = h("button", { type: "button", class: "button", disabled: true },
    "First error");
  const followButton = h("button", { type: "button", class: "button", "aria-pressed": "true" },
    "Following the end");
  const gotoMessage = h("span", { class: "goto-message", "aria-live": "polite" });

  const view = new LogView({
    label: "Build log",
    linkFor: (n) => route.build(namespace, repository, buildId, n),
    onMark: (n) => { gotoMessage.textContent = `Line ${n.toLocaleString()}.`; },
    // in order, once each, however they came (pages, the tail, the stream)
    onEntries: (entries) => {
      let phaseChanged = false;
      for (const entry of entries) {
        if (entry.type === "phase") {
          phases.push({ phase: entry.message, at: toDate(entry.data && entry.data.datetime) });
          phaseChanged = true;
        }
      }
      errorButton.disabled = view.firstErrorLine() === null;
      if (phaseChanged) {
        renderTimeline();
        if (!ended) soon();
      }
    },
    onFollow: (following) => {
      followButton.setAttribute("aria-pressed", String(following));
      followButton.textContent = following ? "Following the end" : "Follow the end";
    },
  });

  const dialogTitle = h("h2", { id: "cancel-title" }, "Cancel this build?");
  const confirmButton = h("button", { type: "button", class: "button danger" }, "Cancel build");
  const keepButton = h("button", { type: "button", class: "button" }, "Keep building");
  const dialog = h("dialog", { "aria-labelledby": "cancel-title", "aria-describedby": "cancel-text" },
    dialogTitle,
    h("p", { id: "cancel-text" }, "Its worker is stopped and the build ends ",
      h("strong", {}, "cancelled"), ". A build that has started pushing can no longer be cancelled."),
    h("div", { class: "actions" }, keepButton, confirmButton));

  const el = h("section", { class: "build" },
    h("p", { class: "small" }, h("a", { href: route.home() }, "Repositories"), " / ", namespace,
      " / ", h("a", { href: route.repo(namespace, repository) }, repository)),
    h("div", { class: "build-head" },
      h("h1", {}, `Build ${buildId.slice(0, 8)} `, phaseEl),
      h("div", { class: "actions" }, cancelButton, againButton)),
    notices,
    h("div", { class: "build-body" },
      h("section", { class: "build-log", "aria-labelledby": "log-title" },
        h("div", { class: "log-toolbar" },
          h("h2", { id: "log-title" }, "Log"),
          h("button", { type: "button", class: "button", onclick: () => view.setAll(true) }, "Fold all steps"),
          h("button", { type: "button", class: "button", onclick: () => view.setAll(false) }, "Unfold all"),
          gotoForm, errorButton, followButton, gotoMessage, status),
        view.el),
      h("aside", { class: "build-details", "aria-label": "Build details" },
        foldingSection("summary", "Summary", summary),
        foldingSection("phases", "Phases", timeline),
        foldingSection("attempts", "Attempts", attempts),
        foldingSection("trace", "Trace", traceBox))),
    dialog);

  function renderBuild() {
    if (!build) return;
    phaseEl.replaceChildren(phaseBadge(build.phase));
    cancelButton.hidden = !CANCELLABLE.has(build.phase);
    const items = [
      ["Phase", phaseBadge(build.phase)],
      ["Tags", tagList(build.tags)],
      ["Started by", build.manual_user
        || (build.trigger && build.trigger.name ? `trigger ${build.trigger.name}` : "—")],
      ["Started", timeEl(build.started)],
      ["Duration", buildDuration(build) || "—"],
      ["Executor", build.executor || "—"],
      ["Attempts", `${(build.attempts || []).length} (retries left: ${build.retries_remaining})`],
      ["Digest", build.image_digest ? h("code", { class: "digest" }, build.image_digest) : "—"],
      ...gitSource(build),
      ["Signature", signingEl],
      ["Context", build.archive_url ? h("code", {}, build.archive_url)
        : build.resource_key ? `uploaded file ${build.resource_key}`
          : build.trigger_metadata && build.trigger_metadata.git_url ? "the git commit above" : "—"],
      ["Dockerfile", h("code", {}, [build.context, build.dockerfile_path].filter(Boolean).join("/"))],
    ];
    for (const [key, value] of Object.entries(build.status || {})) {
      items.push([key.replace(/_/g, " "), typeof value === "string" ? value : JSON.stringify(value)]);
    }
    summary.replaceChildren(...items.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    if (build.phase === "complete" && !signingAsked) {
      signingAsked = true;
      loadSigning();
    }
    const banner = notices.querySelector(".build-error");
    if (build.error) {
      const box = h("div", { class: "notice error build-error", role: "alert" },
        h("strong", {}, `Build ${build.phase}:`), h("pre", {}, build.error));
      if (banner) banner.replaceWith(box); else notices.prepend(box);
    } else if (banner) banner.remove();
    renderAttempts();
    renderTimeline();
    if (FINAL.has(build.phase) && !traceShown) loadTrace();
  }

  // the spans from submit to the last push (docs/traces.md), once the build has ended
  async function loadTrace() {
    traceShown = true;
    try {
      const trace = await api(`${path}/trace`);
      if (!trace.complete && !destroyed && ++traceTries < 4) {
        // the end was just recorded: its spans are written within a second or so
        setTimeout(() => { if (!destroyed) { traceShown = false; renderBuild(); } }, 1500);
      }
      traceBox.replaceChildren(traceChart(trace));
    } catch (e) {
      traceBox.replaceChildren(errorNotice(e, "Could not load the trace:"));
    }
  }

  async function loadSigning() {
    let found;
    try {
      found = await api(`${path}/signing`);
    } catch (e) {
      // 404: signing was off for this build (or Quay mode: the registry holds them)
      signingEl.replaceChildren(h("span", { class: "muted" }, e.status === 404 ? "not signed" : "—"));
      return;
    }
    if (!found.signed) {
      signingEl.replaceChildren(found.error
        ? h("span", { class: "signing-error" }, `not signed: ${found.error}`)
        : h("span", { class: "muted", title: found.reason || "" }, "not signed"));
      return;
    }
    const parts = [h("span", { class: "signed" },
      `signed (${found.digests.length} digest${found.digests.length === 1 ? "" : "s"}, key `,
      h("code", { title: found.key_id }, found.key_id.slice(0, 12)), ")")];
    if (found.provenance.length) parts.push(" ", download("provenance", "Provenance"));
    if (found.sbom.length) parts.push(" ", download("sbom", "SBOM"));
    signingEl.replaceChildren(...parts);
  }

  function download(what, label) {
    // fetched with the session's token (a plain link would carry none), saved as a file
    return h("button", {
      type: "button", class: "button", onclick: async () => {
        const data = await api(`${path}/${what}`);
        const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)],
          { type: "application/json" }));
        const a = h("a", { href: url, download: `${buildId}-${what}.json` });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      },
    }, label);
  }

  function renderAttempts() {
    const list = build.attempts || [];
    if (!list.length) {
      attempts.replaceChildren(h("p", { class: "muted" }, "No worker has been started yet."));
      return;
    }
    attempts.replaceChildren(h("table", { class: "data cards" },
      h("thead", {}, h("tr", {}, ["Attempt", "Executor", "Worker", "Started", "Duration", "Outcome"]
        .map((n) => h("th", { scope: "col" }, n)))),
      h("tbody", {}, list.map((a) => h("tr", {},
        h("td", { "data-label": "Attempt" }, String(a.attempt ?? "")),
        h("td", { "data-label": "Executor" }, a.executor || "—"),
        h("td", { "data-label": "Worker" }, h("code", {}, a.worker_id || "—")),
        h("td", { "data-label": "Started" }, timeEl(a.started)),
        h("td", { "data-label": "Duration" },
          a.started ? duration((a.ended || Date.now() / 1000) - a.started) : "—"),
        h("td", { "data-label": "Outcome" },
          a.outcome ? a.outcome.replace(/_/g, " ") : (FINAL.has(build.phase) ? "—" : "running")))))));
  }

  function renderTimeline() {
    if (!phases.length) {
      timeline.replaceChildren(h("li", { class: "muted" }, "No phase yet."));
      return;
    }
    const final = build && FINAL.has(build.phase);
    timeline.replaceChildren(...phases.map((p, i) => {
      const next = phases[i + 1];
      const end = next ? next.at : (final ? null : new Date());
      const last = i === phases.length - 1;
      return h("li", { class: last ? "current" : null },
        phaseBadge(p.phase), " ", timeEl(p.at ? p.at.getTime() / 1000 : null),
        end && p.at ? h("span", { class: "muted small" }, ` for ${duration((end - p.at) / 1000)}`) : null);
    }));
  }

  async function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = null;
    if (destroyed) return;
    try {
      build = await api(`${path}/status`);
      renderBuild();
    } catch (e) {
      if (!build) {
        el.replaceChildren(h("h1", { tabindex: "-1" }, `Build ${buildId.slice(0, 8)}`),
          errorNotice(e, "Could not load the build:"));
        return;
      }
    }
    if (!destroyed && build && !FINAL.has(build.phase)) refreshTimer = setTimeout(refresh, 5000);
  }

  function soon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150);
  }

  function showStatus(state) {
    if (state) streamState = state;
    const known = view.known.toLocaleString();
    // short: the toolbar keeps its room (style.css); the whole log is there once it says
    // "N lines" alone
    status.textContent = view.loaded < view.known
      ? `${streamState} · ${Math.floor((100 * view.loaded) / view.known)}% of ${known} lines`
      : `${streamState} · ${known} lines`;
  }

  async function loadLog(head) {
    let first;
    try {
      first = await head;
    } catch (e) {
      if (destroyed) return;
      startStream(0);  // the stream alone brings the whole log, as it did before pages
      return;
    }
    if (destroyed) return;
    const shown = first.logs.length;
    const total = Number(first.total);
    let tail = null;
    if (total > shown) {
      const from = Math.max(shown, total - EDGE_LINES);
      try {
        tail = { from, body: await logPage(from, EDGE_LINES) };
      } catch (e) {
        if (destroyed) return;
      }
    }
    // both in one frame: the first screen drawn is the log's end, where it stays
    view.append(first.logs, 0);
    if (tail) view.append(tail.body.logs, tail.from);
    showStatus();
    startStream(view.known);
    if (view.loaded < view.known) loadPages(view.loaded, view.known - view.loaded);
  }

  function logPage(start, limit) {
    return api(`${path}/logs?start=${start}&limit=${limit}`, { signal: loading.signal });
  }

  // the lines between the first ones and the tail, in order, a page at a time; the next
  // page is asked for before this one is added (the server reads it meanwhile)
  async function loadPages(start, count) {
    const to = start + count;
    const ask = (from) => logPage(from, Math.min(PAGE_LINES, to - from));
    let from = start;
    let next = ask(from);
    while (next && !destroyed) {
      let body;
      try {
        body = await next;
      } catch (e) {
        if (destroyed || e.name === "AbortError") return;
        if (e.status === 0 || e.status === 429 || e.status >= 500) {
          await sleep(1000);
          next = ask(view.loaded);
          from = view.loaded;
          continue;
        }
        notices.append(errorNotice(e, "Could not load the log:"));
        return;
      }
      const got = body.logs.length;
      next = got && from + got < to ? ask(from + got) : null;
      view.append(body.logs, from);
      from += got;
      showStatus();
    }
  }

  function startStream(start) {
    stream = followEvents(`${path}/logs/stream`, start, {
      onLogs: (entries, first) => {
        view.append(entries, first);
        showStatus();
      },
      onEnd: (finished) => {
        ended = true;
        build = finished;
        renderBuild();
        showStatus("ended");
        announce(`Build ${finished.phase}`);
      },
      onStatus: (text) => showStatus(text),
      onError: (error) => { notices.append(errorNotice(error, "The log cannot be followed:")); },
    });
  }

  cancelButton.addEventListener("click", () => dialog.showModal());
  keepButton.addEventListener("click", () => dialog.close());
  confirmButton.addEventListener("click", async () => {
    confirmButton.disabled = true;
    try {
      await api(path, { method: "DELETE" });
      announce("Build cancelled");
      dialog.close();
      await refresh();
    } catch (e) {
      dialog.close();
      notices.append(errorNotice(e, "Could not cancel the build:"));
    } finally {
      confirmButton.disabled = false;
    }
  });
  againButton.addEventListener("click", async () => {
    againButton.disabled = true;
    try {
      const next = await api(`${path}/rebuild`, { method: "POST" });
      location.hash = route.build(namespace, repository, next.id);
    } catch (e) {
      notices.append(errorNotice(e, "Could not start the build again:"));
    } finally {
      againButton.disabled = false;
    }
  });
  gotoForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const n = Number(gotoInput.value);
    if (!Number.isInteger(n) || n < 1) {
      gotoMessage.textContent = "Give a line number, 1 or more.";
      return;
    }
    showLine(n);
  });
  errorButton.addEventListener("click", () => {
    const n = view.firstErrorLine();
    if (n) showLine(n);
  });
  followButton.addEventListener("click", () => view.follow());

  // the line goes in the address (a link to share); the same address again makes no
  // hashchange, yet the user may have scrolled away since: then go there directly
  function showLine(n) {
    const target = route.build(namespace, repository, buildId, n);
    if (location.hash === target) goTo(n);
    else location.hash = target;
  }

  function goTo(n) {
    const beyond = ended && n > view.known;
    if (view.goTo(n, { wait: !beyond })) return;
    if (beyond) {
      gotoMessage.textContent = `The log has ${view.known.toLocaleString()} lines; `
        + `there is no line ${n.toLocaleString()}.`;
    } else if (n <= view.known) {
      gotoMessage.textContent = `Line ${n.toLocaleString()} is loading; it is shown when it arrives.`;
    } else {
      gotoMessage.textContent = `Line ${n.toLocaleString()} is not in the log yet; `
        + "it is shown when it arrives.";
    }
  }

  // asked beside the build's status, not after it: the log's first lines (all of a
  // short log) and its length
  const head = logPage(0, EDGE_LINES);
  head.catch(() => {});  // a build that cannot be loaded says so once, below
  refresh().then(() => { if (!destroyed && build) loadLog(head); });
  if (line) goTo(line);

  return {
    el,
    title: `Build ${buildId.slice(0, 8)} · ${namespace}/${repository}`,
    update(target) {
      if (target.line && target.line !== view.marked + 1) goTo(target.line);
    },
    destroy() {
      destroyed = true;
      loading.abort();
      clearTimeout(refreshTimer);
      if (stream) stream.stop();
      view.destroy();
    },
  };
}

// Which of the build page's side sections are open, remembered in this browser for every
// build (a user who folds the attempts away wants them folded on the next build too).
const OPEN_SECTIONS_KEY = "slipway.build.open-sections";

function openSections() {
  try {
    const saved = JSON.parse(localStorage.getItem(OPEN_SECTIONS_KEY) || "{}");
    return saved && typeof saved === "object" ? saved : {};
  } catch {
    return {};  // storage refused or a value from elsewhere: every section open
  }
}

function rememberOpen(name, open) {
  try {
    localStorage.setItem(OPEN_SECTIONS_KEY, JSON.stringify({ ...openSections(), [name]: open }));
  } catch { /* storage refused (private mode): the state lasts for this page only */ }
}

// a section that folds (a <details>: keyboard and screen readers know it as such) whose
// summary is the section's heading
function foldingSection(name, title, content) {
  const open = openSections()[name] !== false;
  const details = h("details", { class: "fold-section", open, dataset: { section: name } },
    h("summary", {}, h("h2", {}, title)),
    content);
  details.addEventListener("toggle", () => rememberOpen(name, details.open));
  return details;
}

// a trigger's build (docs/triggers.md): the repository, ref and commit it built
function gitSource(build) {
  const git = build.trigger_metadata;
  if (!git || !git.commit) return [];
  const author = git.author && (git.author.name || git.author.username);
  const message = (git.message || "").split("\n")[0];
  return [
    ["Git", h("code", {}, git.git_url || "—")],
    ["Ref", h("code", {}, git.ref || "—")],
    // the link comes with the delivery: only a web address is made a link
    ["Commit", /^https?:\/\//.test(git.commit_url || "") ? h("a", { href: git.commit_url, class: "mono" }, git.commit)
      : h("code", {}, git.commit)],
    ...(message || author ? [["Commit message", [message, author ? ` (${author})` : ""].join("")]] : []),
  ];
}
