// The single page: sign-in, the hash router, the header.

import { api, ApiError, onUnauthorized, session } from "./api.js";
import { announce, errorNotice, h } from "./dom.js";
import { homePage } from "./page-home.js";
import { repoPage } from "./page-repo.js";
import { buildPage } from "./page-build.js";
import { newBuildPage } from "./page-new.js";
import { managerPage } from "./page-manager.js";
import { tokensPage } from "./page-tokens.js";
import { auditPage } from "./page-audit.js";

const main = document.getElementById("main");
let current = null;  // { key, page }
let signInMessage = null;
let signingIn = false;  // a 401 then means a wrong token, not a session that ended

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?", 2);
  const parts = path.split("/").filter(Boolean).map((p) => decodeURIComponent(p));
  return { parts, query: new URLSearchParams(query) };
}

function resolve({ parts, query }) {
  const [first, ...rest] = parts;
  if (!first) return { key: "home", nav: "home", make: () => homePage() };
  if (first === "repo" && rest.length === 2) {
    return { key: `repo/${rest.join("/")}`, nav: "home", make: () => repoPage(rest[0], rest[1], query) };
  }
  if (first === "build" && (rest.length === 3 || rest.length === 4)) {
    const match = rest[3] ? /^L(\d+)$/.exec(rest[3]) : null;
    const line = match ? Number(match[1]) : null;
    return {
      key: `build/${rest.slice(0, 3).join("/")}`, nav: "home", line,
      make: () => buildPage(rest[0], rest[1], rest[2], line),
    };
  }
  if (first === "new" && rest.length === 0) {
    return { key: "new", nav: "new", make: () => newBuildPage(query) };
  }
  if (first === "manager" && rest.length === 0) {
    return { key: "manager", nav: "manager", make: () => managerPage() };
  }
  if (first === "tokens" && rest.length === 0) {
    return { key: "tokens", nav: "tokens", make: () => tokensPage() };
  }
  if (first === "audit" && rest.length === 0) {
    return { key: `audit?${query}`, nav: "audit", make: () => auditPage(query) };
  }
  return { key: "missing", nav: null, make: () => missingPage() };
}

function missingPage() {
  const el = h("section", {},
    h("h1", { tabindex: "-1" }, "Page not found"),
    h("p", {}, "There is no page at this address. ", h("a", { href: "#/" }, "See the repositories.")));
  return { el, title: "Not found" };
}

function setNav(active) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function show() {
  if (!session.token) { signInPage(); return; }
  if (!document.getElementById("whoami").textContent) {
    api("/api/v1/user/").then(showUser, () => {});  // a 401 signs out by itself
  }
  const target = resolve(parseHash());
  if (current && current.key === target.key && current.page.update) {
    current.page.update(target);
    return;
  }
  if (current && current.page.destroy) current.page.destroy();
  const page = target.make();
  current = { key: target.key, page };
  setNav(target.nav);
  document.getElementById("nav").hidden = false;
  document.getElementById("session").hidden = false;
  main.replaceChildren(page.el);
  document.title = page.title ? `${page.title} · slipway` : "slipway";
  const heading = main.querySelector("h1");
  if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus({ preventScroll: true }); }
}

function signOut(message) {
  // a single sign-on's token is revoked on the server; an API token is only forgotten
  if (!message && session.token) api("/api/v1/slipway/signout", { method: "POST" }).catch(() => {});
  session.clear();
  signInMessage = message || null;
  if (current && current.page.destroy) current.page.destroy();
  current = null;
  signInPage();
}

function signInPage() {
  if (current && current.page.destroy) current.page.destroy();
  current = null;
  setNav(null);
  document.getElementById("nav").hidden = true;
  document.getElementById("session").hidden = true;
  document.getElementById("whoami").textContent = "";
  document.title = "Sign in · slipway";
  const error = h("div", { id: "signin-error" });
  const input = h("input", {
    id: "token", name: "token", type: "password", required: true, autocomplete: "off",
    spellcheck: "false", "aria-describedby": "token-hint signin-error",
  });
  const button = h("button", { type: "submit", class: "button primary" }, "Sign in");
  const form = h("form", { class: "stack", novalidate: true },
    h("div", { class: "field" },
      h("label", { for: "token" }, "API token"),
      input,
      h("p", { class: "hint", id: "token-hint" },
        "The token stays in this browser tab only, until you sign out or close the tab. ",
        "On its first start, the embedded default prints a link that signs you in; its admin ",
        "token is also in ", h("code", {}, "DATA_DIR/admin-token"), ".")),
    error,
    h("div", { class: "actions" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      error.replaceChildren(errorNotice("enter an API token", "Cannot sign in:"));
      input.focus();
      return;
    }
    button.disabled = true;
    await signIn(token, error);
    button.disabled = false;
  });
  if (signInMessage) {
    error.replaceChildren(errorNotice(new Error(signInMessage), "Signed out:"));
    signInMessage = null;
  }
  const sso = h("div", { class: "signin-sso", hidden: true });
  main.replaceChildren(h("section", { class: "signin" },
    h("h1", { tabindex: "-1" }, "Sign in to slipway"), sso, form));
  input.focus();
  // single sign-on, when the server offers it (ACCESS.OIDC): a link to its login
  api("/api/v1/slipway/signin").then((methods) => {
    if (!methods || !methods.oidc) return;
    sso.replaceChildren(
      h("a", { class: "button primary", href: "/auth/oidc/login" }, "Sign in with single sign-on"),
      h("p", { class: "hint" }, "Or with an API token:"));
    sso.hidden = false;
  }, () => {});
}

async function signIn(token, errorBox) {
  session.set(token);
  signingIn = true;
  try {
    // checks the token, and puts the sign-in in the audit log
    const user = await api("/api/v1/slipway/signin", { method: "POST" });
    signingIn = false;
    showUser(user);
    announce(`Signed in as ${user.username}`);
    await show();
  } catch (e) {
    signingIn = false;
    session.clear();
    const message = e.message;
    if (errorBox) {
      errorBox.replaceChildren(errorNotice(new Error(message), "Cannot sign in:"));
      const field = document.getElementById("token");
      if (field) field.focus();
    } else {
      signInMessage = message;
      signInPage();
    }
  }
}

function showUser(user) {
  const scopes = Object.entries(user.scopes || {})
    .map(([ns, role]) => `${role} on ${ns === "*" ? "all namespaces" : ns}`).join(", ");
  const who = document.getElementById("whoami");
  who.textContent = `Signed in as ${user.username}`;
  who.title = scopes;
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  onUnauthorized((error) => { if (!signingIn) signOut(`${error.message}; sign in again`); });
  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith("#token=")) { takeTokenFromAddress(); return; }
    if (session.token) show();
  });
  if (location.hash.startsWith("#token=")) { takeTokenFromAddress(); return; }
  if (!session.token) { signInPage(); return; }
  try {
    showUser(await api("/api/v1/user/"));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;  // signed out, with the message
    main.replaceChildren(errorNotice(e, "The server could not be reached:"));
    return;
  }
  show();
}

// a sign-in link: #token=... is read, then removed from the address bar and history
function takeTokenFromAddress() {
  const token = decodeURIComponent(location.hash.slice("#token=".length));
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  signIn(token, null);
}

start();
