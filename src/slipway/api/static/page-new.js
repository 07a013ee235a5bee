// Start a build: upload an archive of the context (or a Dockerfile), or give an archive URL.

import { api, upload } from "./api.js";
import { announce, errorNotice, h } from "./dom.js";
import { route } from "./format.js";

const MIME = [[/\.zip$/i, "application/zip"], [/\.(tgz|gz)$/i, "application/gzip"],
  [/\.tar$/i, "application/x-tar"]];

function mimeOf(file) {
  if (file.type) return file.type;
  const known = MIME.find(([re]) => re.test(file.name));
  return known ? known[1] : "application/octet-stream";
}

function field(id, label, input, hint) {
  input.id = id;
  if (hint) input.setAttribute("aria-describedby", `${id}-hint`);
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

// "NAME=value" lines -> {NAME: value}; throws with the line that is wrong
export function parseBuildArgs(text) {
  const args = {};
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    if (eq <= 0) {
      throw new Error(`build arguments, line ${i + 1}: ${JSON.stringify(line)} is not NAME=value`);
    }
    args[line.slice(0, eq).trim()] = line.slice(eq + 1);
  });
  return args;
}

export function newBuildPage(query) {
  const [ns, repo] = (query.get("repository") || "").split("/", 2);
  const namespace = h("input", { type: "text", name: "namespace", required: true, value: ns || "",
    autocomplete: "off", spellcheck: "false" });
  const repository = h("input", { type: "text", name: "repository", required: true,
    value: repo || "", autocomplete: "off", spellcheck: "false" });
  const fromFile = h("input", { type: "radio", name: "source", value: "file", id: "source-file", checked: true });
  const fromUrl = h("input", { type: "radio", name: "source", value: "url", id: "source-url" });
  const file = h("input", { type: "file", name: "archive",
    accept: ".tar,.tar.gz,.tgz,.zip,application/gzip,application/x-tar,application/zip,text/plain,*/*" });
  const url = h("input", { type: "url", name: "archive_url", placeholder: "https://example.com/context.tar.gz" });
  const tags = h("input", { type: "text", name: "tags", placeholder: "latest", autocomplete: "off",
    spellcheck: "false" });
  const dockerfile = h("input", { type: "text", name: "dockerfile_path", placeholder: "Dockerfile",
    autocomplete: "off", spellcheck: "false" });
  const buildArgs = h("textarea", { name: "build_args", rows: "3", spellcheck: "false",
    placeholder: "VERSION=1.2.3" });
  const fileField = field("archive", "Context archive", file,
    "A tar, tar.gz or zip of the build context (with its Dockerfile), or a Dockerfile alone.");
  const urlField = field("archive-url", "Archive URL", url,
    "An http:// or https:// URL of a tar, tar.gz or zip archive, fetched by the build worker.");
  urlField.hidden = true;
  const progress = h("progress", { max: "100", value: "0", "aria-label": "Upload progress", hidden: true });
  const statusText = h("p", { role: "status", class: "small" });
  const errors = h("div", {});
  const submit = h("button", { type: "submit", class: "button primary" }, "Start the build");

  const sourceChanged = () => {
    fileField.hidden = !fromFile.checked;
    urlField.hidden = !fromUrl.checked;
  };
  fromFile.addEventListener("change", sourceChanged);
  fromUrl.addEventListener("change", sourceChanged);

  const form = h("form", { class: "stack", novalidate: true },
    h("div", { class: "row2" },
      field("namespace", "Namespace", namespace),
      field("repository", "Repository", repository)),
    h("fieldset", { class: "field" }, h("legend", {}, "Context"),
      h("label", { class: "choice", for: "source-file" }, fromFile, "Upload an archive"),
      h("label", { class: "choice", for: "source-url" }, fromUrl, "Give an archive URL"),
      fileField, urlField),
    field("tags", "Tags", tags, "Separated by spaces or commas; default: latest."),
    field("dockerfile", "Dockerfile path", dockerfile,
      "Inside the archive; default: Dockerfile at its root."),
    field("build-args", "Build arguments", buildArgs, "NAME=value, one per line."),
    h("div", { class: "form-status" }, errors, progress, statusText),
    h("div", { class: "actions" }, submit));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    const ns = namespace.value.trim();
    const name = repository.value.trim();
    const body = {};
    try {
      if (!ns || !name) throw new Error("give the namespace and the repository to build into");
      const tagList = tags.value.split(/[\s,]+/).filter(Boolean);
      if (tagList.length) body.docker_tags = tagList;
      if (dockerfile.value.trim()) body.dockerfile_path = dockerfile.value.trim();
      const args = parseBuildArgs(buildArgs.value);
      if (Object.keys(args).length) body.build_args = args;
      if (fromUrl.checked) {
        if (!url.value.trim()) throw new Error("give the URL of the context archive");
        body.archive_url = url.value.trim();
      } else if (!file.files.length) {
        throw new Error("choose the context archive (or a Dockerfile) to upload");
      }
    } catch (e) {
      errors.replaceChildren(errorNotice(e, "Cannot start the build:"));
      return;
    }
    submit.disabled = true;
    try {
      if (!fromUrl.checked) {
        const chosen = file.files[0];
        const drop = await api("/api/v1/filedrop/", { method: "POST", body: { mimeType: mimeOf(chosen) } });
        progress.hidden = false;
        statusText.textContent = `Uploading ${chosen.name}…`;
        await upload(drop.url, chosen, (done, total) => {
          progress.value = Math.round((done / total) * 100);
          statusText.textContent = `Uploading ${chosen.name}: ${(done / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`;
        });
        body.file_id = drop.file_id;
      }
      statusText.textContent = "Starting the build…";
      const build = await api(
        `/api/v1/repository/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/build/`,
        { method: "POST", body });
      announce("Build started");
      location.hash = route.build(ns, name, build.id);
    } catch (e) {
      statusText.textContent = "";
      progress.hidden = true;
      errors.replaceChildren(errorNotice(e, "The server refused the build:"));
    } finally {
      submit.disabled = false;
    }
  });

  const el = h("section", {}, h("h1", {}, "Start a build"), form);
  return { el, title: "Start a build" };
}
