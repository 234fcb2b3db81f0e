// The admin API from the browser. The token lives in sessionStorage (this tab only, gone when it closes) and
// goes only in the Authorization header, never in a URL. Streams are read with fetch(), which can send that
// header (EventSource cannot).

const TOKEN_KEY = "sandgate.adminToken";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An admin API error: HTTP status plus the body's {code, message, field}. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "";
    this.field = error.field || "";
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(callback) { onUnauthorized = callback; }

function headers(extra = {}) {
  return { Authorization: `Bearer ${token.get() || ""}`, ...extra };
}

/** One call: resolves to the decoded JSON body (null for none); rejects with ApiError. */
export async function call(method, path, body) {
  const init = { method, headers: headers(), cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const decoded = await jsonOrNull(response);
  if (response.status === 401) onUnauthorized();
  if (!response.ok) throw new ApiError(response.status, decoded);
  return decoded;
}

async function jsonOrNull(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null; // not the API's JSON (a proxy's error page, say): ApiError falls back to the status
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows a server-sent event stream at `path` and reconnects by itself (0.5 s, doubling to 10 s).
 * onEvent(name, data) gets each event's decoded JSON; onStatus("live" | "reconnecting") each change;
 * onConnect() runs on each (re)connection once the stream is open, before its events are read: a backfill
 * there misses nothing (what happens meanwhile waits in the stream; the caller drops duplicates).
 * Returns a function that stops it.
 */
export function follow(path, { onEvent, onStatus = () => {}, onConnect = async () => {} }) {
  let stopped = false;
  let controller = null;
  async function run() {
    let delay = 500;
    while (!stopped) {
      controller = new AbortController();
      try {
        const response = await fetch(path, {
          headers: headers({ Accept: "text/event-stream" }), signal: controller.signal, cache: "no-store",
          credentials: "omit",
        });
        if (response.status === 401) { onUnauthorized(); return; }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        await onConnect();
        onStatus("live");
        delay = 500;
        await readEvents(response.body, onEvent);
      } catch (error) {
        if (stopped) return;
        controller.abort(); // a stream left half-read (the backfill failed) is closed before the next
      }
      onStatus("reconnecting");
      await sleep(delay);
      delay = Math.min(delay * 2, 10000);
    }
  }
  run();
  return () => { stopped = true; if (controller) controller.abort(); };
}

async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      dispatch(block, onEvent);
    }
  }
}

function dispatch(block, onEvent) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (data.length) onEvent(name, JSON.parse(data.join("\n")));
}
