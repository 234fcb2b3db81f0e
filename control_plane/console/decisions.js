// The decision stream: a backfill from GET /v1/decisions on every (re)connection, then the live SSE stream;
// kept in memory (bounded), filtered by session, verdict and reason, with reasons colour-coded by kind.

import { call, follow } from "./api.js";
import { h, clear, $, bytes, clock } from "./dom.js";

const KEEP = 5000; // decisions held in the page
const SHOWN = 300; // rows in a table

// Each reason's kind picks its colour; an unknown reason is "other". Class names never come from the data.
const REASON_KINDS = {
  "host-not-allowed": "destination", "destination-ip-forbidden": "destination",
  "tunnel-not-inspectable": "destination", "credential-host-mismatch": "destination",
  "method-not-allowed": "request", "path-not-allowed": "request", "bad-request": "request",
  "destination-denied-by-policy": "policy",
  "approval-denied": "approval", "approval-timeout": "approval", "approval-allowed-once": "approval",
  "approval-allowed-session": "approval",
  "session-ended": "session", "session-unknown": "session",
};

export function reasonKind(decision) {
  if (decision.verdict === "allow" && !REASON_KINDS[decision.reason]) return "allowed";
  if (decision.verdict === "event") return "session";
  return REASON_KINDS[decision.reason] || "other";
}

export function matches(decision, filters) {
  return (!filters.session || decision.session_id.startsWith(filters.session))
    && (!filters.verdict || decision.verdict === filters.verdict)
    && (!filters.reason || decision.reason.includes(filters.reason));
}

export class Decisions {
  constructor(onStatus, onChange) {
    this.events = []; // oldest first
    this.ids = new Set();
    this.onChange = onChange;
    this.pending = false;
    for (const id of ["filter-session", "filter-verdict", "filter-reason"]) {
      $(id).addEventListener("input", () => this.render());
    }
    this.stop = follow("/v1/decisions", {
      onConnect: () => this.backfill(),
      onEvent: (name, data) => { if (name === "decision") this.add([data]); },
      onStatus,
    });
  }

  async backfill() {
    const body = await call("GET", "/v1/decisions?limit=500");
    this.add(body.decisions.slice().reverse());
  }

  add(decisions) {
    const seenAt = Date.now();
    for (const d of decisions) {
      if (this.ids.has(d.id)) continue;
      this.ids.add(d.id);
      this.events.push({ ...d, seenAt });
    }
    this.events.sort((a, b) => a.id - b.id);
    while (this.events.length > KEEP) this.ids.delete(this.events.shift().id);
    this.scheduleRender();
  }

  scheduleRender() {
    if (this.pending) return;
    this.pending = true;
    setTimeout(() => { this.pending = false; this.render(); this.onChange(); }, 0);
  }

  filters() {
    return {
      session: $("filter-session").value.trim(), verdict: $("filter-verdict").value,
      reason: $("filter-reason").value.trim(),
    };
  }

  forSession(sessionId) {
    return this.events.filter((d) => d.session_id === sessionId);
  }

  render() {
    const filters = this.filters();
    const shown = this.events.filter((d) => matches(d, filters)).slice(-SHOWN).reverse();
    clear($("decisions-table").tBodies[0]).append(...shown.map((d) => row(d, true)));
  }
}

/** One decision as a table row; withSession adds the session column. */
export function row(d, withSession) {
  return h("tr", { dataset: { id: d.id, seenAt: d.seenAt } },
    h("td", { text: clock(d.time) }),
    withSession ? h("td", { text: d.session_id }) : null,
    h("td", { class: `verdict-${["allow", "deny", "would_deny", "error", "event"].includes(d.verdict) ? d.verdict : "other"}`,
      text: d.verdict }),
    h("td", {}, h("span", { class: `reason reason-${reasonKind(d)}`, text: d.reason })),
    h("td", { text: d.method }),
    h("td", { class: "host", text: d.port ? `${d.host}:${d.port}` : d.host }),
    h("td", { class: "path", text: d.path || "" }),
    h("td", { text: d.response_code || "" }),
    h("td", { text: bytes((d.bytes_sent || 0) + (d.bytes_received || 0)) }),
  );
}
