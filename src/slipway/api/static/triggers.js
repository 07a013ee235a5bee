// The repository page's build triggers (docs/triggers.md): listed, created, edited,
// disabled, run now on a ref, and their recent deliveries. Credentials are write-only:
// the form sends them, the API only names which are set.

import { api, repoPath } from "./api.js";
import { announce, errorNotice, h } from "./dom.js";
import { route, shortId, timeEl } from "./format.js";

const list = (text) => text.split(/[\s,]+/).filter(Boolean);

function field(id, label, input, hint) {
  input.id = id;
  if (hint) input.setAttribute("aria-describedby", `${id}-hint`);
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

function text(name, value, placeholder) {
  return h("input", { type: "text", name, value: value || "", placeholder: placeholder || null,
    autocomplete: "off", spellcheck: "false" });
}

export function triggersPanel(namespace, repository) {
  const base = `${repoPath(namespace, repository)}/trigger/`;
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const formSlot = h("div", {});
  const secretSlot = h("div", {});
  const addButton = h("button", { type: "button", class: "button" }, "New trigger");
  addButton.addEventListener("click", () => openForm(null));
  const el = h("section", { class: "triggers", "aria-labelledby": "triggers-heading" },
    h("div", { class: "build-head" },
      h("h2", { id: "triggers-heading" }, "Build triggers"), addButton),
    h("p", { class: "small muted" }, "Builds from git pushes (GitHub, GitLab, signed webhooks), "
      + "schedules and base-image changes; set-up steps in docs/triggers.md."),
    secretSlot, formSlot, body);

  async function refresh() {
    let data;
    try {
      data = await api(base);
    } catch (e) {
      // Quay mode: Quay's triggers start builds, these routes are not there
      body.replaceChildren(e.status === 404 ? h("p", { class: "small muted" }, e.message)
        : errorNotice(e, "Could not list the triggers:"));
      addButton.hidden = e.status === 404;
      return;
    }
    body.replaceChildren(render(data.triggers));
  }

  function render(triggers) {
    if (!triggers.length) return h("p", { class: "notice info" }, "This repository has no build triggers.");
    return h("div", { class: "trigger-list" }, triggers.map(card));
  }

  function card(t) {
    const deliveries = h("div", { class: "deliveries" });
    const runRef = text("ref", t.default_branch, "main");
    runRef.setAttribute("aria-label", `Ref to build with ${t.name}`);
    const status = h("p", { role: "status", class: "small" });
    const toggle = h("button", { type: "button", class: "button subtle" }, t.enabled ? "Disable" : "Enable");
    toggle.addEventListener("click", async () => {
      try {
        await api(`${base}${t.id}`, { method: "PATCH", body: { enabled: !t.enabled } });
        announce(`Trigger ${t.name} ${t.enabled ? "disabled" : "enabled"}`);
        await refresh();
      } catch (e) { status.replaceChildren(errorNotice(e, "Not changed:")); }
    });
    const edit = h("button", { type: "button", class: "button subtle" }, "Edit");
    edit.addEventListener("click", () => openForm(t));
    const remove = h("button", { type: "button", class: "button danger" }, "Delete");
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Delete the trigger ${t.name}? Its webhook stops working.`)) return;
      try {
        await api(`${base}${t.id}`, { method: "DELETE" });
        announce(`Trigger ${t.name} deleted`);
        await refresh();
      } catch (e) { status.replaceChildren(errorNotice(e, "Not deleted:")); }
    });
    const run = h("button", { type: "button", class: "button primary" }, "Run now");
    run.addEventListener("click", async () => {
      run.disabled = true;
      status.textContent = `Reading ${runRef.value}…`;
      try {
        const build = await api(`${base}${t.id}/run`, { method: "POST", body: { ref: runRef.value.trim() } });
        status.replaceChildren("Build ", h("a", { href: route.build(namespace, repository, build.id), class: "mono" },
          shortId(build.id)), ` queued (${build.tags.join(", ")}).`);
        await showDeliveries();
      } catch (e) {
        status.replaceChildren(errorNotice(e, "Not started:"));
      } finally { run.disabled = false; }
    });
    const showDeliveries = async () => {
      try {
        const data = await api(`${base}${t.id}/deliveries`);
        deliveries.replaceChildren(deliveryTable(t, data.deliveries));
      } catch (e) { deliveries.replaceChildren(errorNotice(e, "Could not read the deliveries:")); }
    };
    showDeliveries();
    const filters = [
      ["Branches", t.branches.join(", ") || "none"], ["Tags", t.tags.join(", ") || "none"],
      ["Paths", t.paths.join(", ") || "any"], ["Image tags", t.tag_templates.join(", ")],
      ["Dockerfile", `${t.context || "."}/${t.dockerfile_path}`],
      ["Credentials", t.credentials.join(", ") || "none"],
      ["Webhook", h("code", {}, t.webhook_url)],
    ];
    if (t.schedule) filters.push(["Schedule", `${t.schedule.cron} (UTC)`]);
    if (t.watch_base_images) filters.push(["Base images", "rebuilds when a FROM image moves"]);
    return h("article", { class: "trigger", dataset: { trigger: t.id } },
      h("h3", {}, t.name, " ", h("span", { class: `phase ${t.enabled ? "phase-complete" : "phase-cancelled"}` },
        t.enabled ? "enabled" : "disabled"), " ", h("span", { class: "small muted" }, `${t.kind} · ${t.git_url}`)),
      h("dl", { class: "summary" }, filters.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      h("div", { class: "actions" }, runRef, run, edit, toggle, remove),
      status, h("h4", {}, "Recent deliveries"), deliveries);
  }

  function deliveryTable(t, items) {
    if (!items.length) return h("p", { class: "small muted" }, "No delivery yet.");
    return h("table", { class: "data" },
      h("caption", { class: "visually-hidden" }, `Recent deliveries of ${t.name}, newest first`),
      h("thead", {}, h("tr", {}, ["Received", "Event", "Outcome", "Ref", "Commit", "Build", "Why"]
        .map((n) => h("th", { scope: "col" }, n)))),
      h("tbody", {}, items.map((d) => h("tr", { dataset: { outcome: d.outcome } },
        h("td", {}, timeEl(d.received)), h("td", {}, d.event),
        h("td", {}, h("span", { class: `phase ${OUTCOME_CLASS[d.outcome] || ""}` }, d.outcome)),
        h("td", { class: "mono" }, d.ref || "—"), h("td", { class: "mono" }, d.commit ? d.commit.slice(0, 7) : "—"),
        h("td", {}, d.build_id ? h("a", { href: route.build(namespace, repository, d.build_id), class: "mono" },
          shortId(d.build_id)) : "—"),
        h("td", {}, d.reason || "")))));
  }

  function openForm(t) {
    const s = t || {};
    const name = text("name", s.name, "web");
    const kind = h("select", { name: "kind" }, ["github", "gitlab", "generic"].map((k) =>
      h("option", { value: k, selected: (s.kind || "github") === k }, k)));
    const gitUrl = text("git_url", s.git_url, "https://github.com/team/app.git");
    const branches = text("branches", (s.branches || ["*"]).join(", "));
    const tags = text("tags", (s.tags || ["*"]).join(", "));
    const paths = text("paths", (s.paths || []).join(", "), "any file");
    const templates = text("tag_templates", (s.tag_templates || ["{branch}", "{tag}", "{sha:7}", "latest"]).join(", "));
    const context = text("context", s.context, "the repository's root");
    const dockerfile = text("dockerfile_path", s.dockerfile_path, "Dockerfile");
    const schedule = text("schedule", s.schedule ? s.schedule.cron : "", "0 4 * * 1");
    const watch = h("input", { type: "checkbox", name: "watch_base_images", checked: !!s.watch_base_images, id: "t-watch" });
    const token = h("input", { type: "password", name: "token", autocomplete: "off",
      placeholder: t && t.credentials.includes("token") ? "set: leave empty to keep" : "" });
    const sshKey = h("textarea", { name: "ssh_key", rows: "3", spellcheck: "false",
      placeholder: t && t.credentials.includes("ssh_key") ? "set: leave empty to keep" : "-----BEGIN OPENSSH PRIVATE KEY-----" });
    const statusToken = h("input", { type: "password", name: "status_token", autocomplete: "off",
      placeholder: t && t.credentials.includes("status_token") ? "set: leave empty to keep" : "" });
    const errors = h("div", {});
    const save = h("button", { type: "submit", class: "button primary" }, t ? "Save the trigger" : "Create the trigger");
    const cancel = h("button", { type: "button", class: "button subtle" }, "Cancel");
    cancel.addEventListener("click", () => formSlot.replaceChildren());
    const form = h("form", { class: "stack trigger-form", novalidate: true, "aria-label": t ? `Edit ${t.name}` : "New trigger" },
      h("h3", {}, t ? `Edit ${t.name}` : "New trigger"),
      h("div", { class: "row2" }, field("t-name", "Name", name), field("t-kind", "Webhooks from", kind)),
      field("t-git", "Git repository", gitUrl, "HTTPS or SSH URL, without a token in it."),
      h("div", { class: "row2" },
        field("t-branches", "Branches", branches, "Globs or /regex/, comma-separated; empty: none."),
        field("t-tags", "Git tags", tags, "Globs or /regex/; empty: none.")),
      field("t-paths", "Paths", paths, "Build only when a changed file matches; empty: any."),
      field("t-templates", "Image tags", templates, "{branch}, {tag}, {sha}, {sha:7}; latest for the default branch."),
      h("div", { class: "row2" }, field("t-context", "Context directory", context), field("t-dockerfile", "Dockerfile", dockerfile)),
      field("t-schedule", "Rebuild schedule", schedule, "Five-field cron, UTC; empty: none."),
      h("label", { class: "choice", for: "t-watch" }, watch, "Rebuild when a FROM image's digest moves"),
      field("t-token", "Clone token (HTTPS)", token),
      field("t-ssh", "Deploy key (SSH, private)", sshKey),
      field("t-status", "Commit-status token", statusToken, "Posts each build's state to its commit."),
      errors, h("div", { class: "actions" }, save, cancel));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      errors.replaceChildren();
      const payload = {
        name: name.value.trim(), kind: kind.value, git_url: gitUrl.value.trim(),
        branches: list(branches.value), tags: list(tags.value), paths: list(paths.value),
        tag_templates: list(templates.value), context: context.value.trim(),
        dockerfile_path: dockerfile.value.trim() || "Dockerfile",
        schedule: schedule.value.trim() ? { cron: schedule.value.trim() } : null,
        watch_base_images: watch.checked,
      };
      for (const [key, input] of [["token", token], ["ssh_key", sshKey], ["status_token", statusToken]]) {
        if (input.value) payload[key] = input.value;
      }
      save.disabled = true;
      try {
        const saved = await api(t ? `${base}${t.id}` : base, { method: t ? "PATCH" : "POST", body: payload });
        formSlot.replaceChildren();
        if (saved.webhook_secret) {
          secretSlot.replaceChildren(h("div", { class: "notice info", role: "status" },
            h("strong", {}, `Webhook for ${saved.name}: `), "set this secret in the forge's webhook now; it is not shown again.",
            h("dl", { class: "summary" }, h("dt", {}, "URL"), h("dd", {}, h("code", {}, saved.webhook_url)),
              h("dt", {}, "Secret"), h("dd", {}, h("code", { class: "webhook-secret" }, saved.webhook_secret)))));
        }
        announce(t ? `Trigger ${saved.name} saved` : `Trigger ${saved.name} created`);
        await refresh();
      } catch (e) {
        errors.replaceChildren(errorNotice(e, "The server refused the trigger:"));
      } finally { save.disabled = false; }
    });
    formSlot.replaceChildren(form);
    name.focus();
  }

  refresh();
  return el;
}

const OUTCOME_CLASS = { built: "phase-complete", ignored: "phase-cancelled", ping: "phase-building",
  refused: "phase-error", failed: "phase-error" };
