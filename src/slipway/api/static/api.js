// The HTTP API, with the token the user signed in with. The token lives in this tab's
// sessionStorage only: gone when the tab closes or the user signs out.

const TOKEN_KEY = "slipway.token";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

export class ApiError extends Error {
  constructor(status, message, type) {
    super(message);
    this.status = status;
    this.type = type || "error";
  }
}

const listeners = new Set();
// called with the ApiError when the server refuses the token (401)
export function onUnauthorized(fn) { listeners.add(fn); }

export function authHeaders(extra) {
  const headers = { ...(extra || {}) };
  const token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

// the API's own message, as it gave it
export async function errorFrom(response) {
  let data = null;
  try { data = await response.json(); } catch { /* not JSON */ }
  const message = (data && (data.error_message || data.detail))
    || `${response.status} ${response.statusText || "error"}`;
  const error = new ApiError(response.status, message, data && data.error_type);
  if (response.status === 401) for (const fn of listeners) fn(error);
  return error;
}

export function networkError(cause) {
  return new ApiError(0, `the slipway server did not answer (${cause.message || cause}); `
    + "check that it is running and reachable", "network");
}

export async function api(path, options = {}) {
  const { method = "GET", body, signal } = options;
  const headers = authHeaders({ Accept: "application/json" });
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, cache: "no-store", signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw networkError(e);
  }
  if (!response.ok) throw await errorFrom(response);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const repoPath = (ns, repo) =>
  `/api/v1/repository/${encodeURIComponent(ns)}/${encodeURIComponent(repo)}`;
export const buildPath = (ns, repo, id) => `${repoPath(ns, repo)}/build/${encodeURIComponent(id)}`;

// PUT a file to a file-drop URL, reporting progress (fetch cannot tell upload progress)
export function upload(url, file, onProgress) {
  // the drop URL names this server; keep the request on the page's origin (CSP, proxies)
  const target = new URL(url, location.href);
  const sameOrigin = target.pathname + target.search;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", sameOrigin);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) { resolve(); return; }
      let message = `${xhr.status} ${xhr.statusText}`;
      try {
        const data = JSON.parse(xhr.responseText);
        message = data.error_message || data.detail || message;
      } catch { /* not JSON */ }
      reject(new ApiError(xhr.status, message));
    };
    xhr.onerror = () => reject(networkError("the upload was interrupted"));
    xhr.send(file);
  });
}
