// Server-Sent Events read with fetch and a ReadableStream, so the API token travels in
// the Authorization header (EventSource cannot send one, and a token in the URL would end
// up in access logs and the browser's history).

import { authHeaders, errorFrom, networkError } from "./api.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Follows `url` from entry `start`: onLogs(entries, firstIndex) for each batch received,
// onEnd(build) once, onStatus(text) for connection changes, onError(error) for a refusal
// (which stops). Reconnects after a dropped connection, resuming after the last entry.
export function followEvents(url, start, { onLogs, onEnd, onStatus, onError }) {
  const controller = new AbortController();
  let next = start;
  let retryMs = 1000;
  let ended = false;

  const handle = (block, batch) => {
    let kind = "message";
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") kind = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
      else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (kind === "log" && data.length) {
      const index = id !== null ? Number(id) : next;
      if (index < next) return;  // already have it (a resend after reconnecting)
      if (batch.entries.length === 0) batch.first = index;
      batch.entries.push(JSON.parse(data.join("\n")));
      next = index + 1;
    } else if (kind === "end" && data.length) {
      ended = true;
      batch.end = JSON.parse(data.join("\n"));
    }
  };

  const run = async () => {
    while (!ended && !controller.signal.aborted) {
      let response;
      try {
        const sep = url.includes("?") ? "&" : "?";
        response = await fetch(`${url}${sep}start=${next}`, {
          headers: authHeaders({ Accept: "text/event-stream" }),
          cache: "no-store",
          signal: controller.signal,
        });
      } catch (e) {
        if (controller.signal.aborted) return;
        onStatus && onStatus(`reconnecting: ${networkError(e).message}`);
        await sleep(retryMs);
        continue;
      }
      if (!response.ok) {
        const error = await errorFrom(response);
        if (response.status >= 500 || response.status === 429) {
          onStatus && onStatus(`reconnecting: ${error.message}`);
          await sleep(retryMs);
          continue;
        }
        onError && onError(error);
        return;
      }
      onStatus && onStatus("live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          const blocks = buffer.split("\n\n");
          buffer = blocks.pop();
          const batch = { first: next, entries: [], end: null };
          for (const block of blocks) handle(block, batch);
          if (batch.entries.length) onLogs(batch.entries, batch.first);
          if (batch.end) { onEnd && onEnd(batch.end); return; }
        }
      } catch (e) {
        if (controller.signal.aborted) return;
      }
      if (!ended) {
        onStatus && onStatus("reconnecting");
        await sleep(retryMs);
      }
    }
  };
  run();
  return { stop: () => controller.abort() };
}
