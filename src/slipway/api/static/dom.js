// Building DOM nodes. Text always goes in as text nodes, never as HTML: build logs and
// error messages are written by whoever wrote the Dockerfile.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function announce(text) {
  const region = document.getElementById("announce");
  if (!region) return;
  region.textContent = "";
  // a new text node after a tick, so screen readers hear a repeated message too
  setTimeout(() => { region.textContent = text; }, 50);
}

export function errorNotice(error, prefix) {
  const message = error && error.message ? error.message : String(error);
  return h("div", { class: "notice error", role: "alert" },
    prefix ? h("strong", {}, prefix, " ") : null, message);
}

// runs `fn` now and then every `ms` after it finished, while the tab is visible
export function every(ms, fn) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    timer = null;
    if (stopped) return;
    if (!document.hidden) {
      try { await fn(); } catch (e) { console.warn(e); }
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  const onVisible = () => { if (!document.hidden && timer !== null) { clearTimeout(timer); run(); } };
  document.addEventListener("visibilitychange", onVisible);
  run();
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisible);
  };
}

// replaces the content of `container`, keeping the keyboard focus on the same link (a
// list that refreshes every few seconds must not throw a keyboard user back to the top)
export function replaceKeepingFocus(container, ...children) {
  const focused = document.activeElement;
  const href = focused && container.contains(focused) ? focused.getAttribute("href") : null;
  container.replaceChildren(...children);
  if (href) {
    const again = [...container.querySelectorAll("a[href]")].find((a) => a.getAttribute("href") === href);
    if (again) again.focus({ preventScroll: true });
  }
}
