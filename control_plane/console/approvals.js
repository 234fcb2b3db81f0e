// The approvals inbox: GET /v1/approvals as a stream (the open ones, then every change), answered with
// POST /v1/approvals/{id}. A sandbox's stated reason is shown as text.

import { call, follow } from "./api.js";
import { h, $, duration, keepChildren } from "./dom.js";

const CHOICES = [["allow_once", "Allow once"], ["allow_session", "Allow for session"], ["deny", "Deny"]];

export function destination(a) {
  if (a.kind === "request") return `${a.method || ""} ${a.host}:${a.port}`.trim();
  const ports = a.rule.ports && a.rule.ports.length ? `:${a.rule.ports.join(",")}` : "";
  return `${a.rule.host}${ports}`;
}

export class Approvals {
  constructor(onStatus) {
    this.open = new Map();
    this.shown = new Map(); // approval id -> {key: its JSON, li}
    this.stop = follow("/v1/approvals", {
      onConnect: async () => { this.open.clear(); this.render(); }, // the stream resends the open ones
      onEvent: (name, data) => { if (name === "approval") this.update(data); },
      onStatus,
    });
    setInterval(() => this.tick(), 1000);
  }

  update(a) {
    if (a.state === "pending") this.open.set(a.id, a);
    else this.open.delete(a.id);
    this.render();
  }

  async answer(id, decision, buttons) {
    buttons.forEach((b) => { b.disabled = true; });
    $("approvals-error").textContent = "";
    try {
      this.update(await call("POST", `/v1/approvals/${encodeURIComponent(id)}`, { decision }));
    } catch (error) {
      $("approvals-error").textContent = error.message;
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  tick() {
    for (const node of document.querySelectorAll("[data-expires-at]")) {
      node.textContent = timeLeft(Number(node.dataset.expiresAt));
    }
  }

  render() {
    const items = [...this.open.values()].sort((a, b) => a.created_at - b.created_at);
    const badge = $("approvals-badge");
    badge.textContent = String(items.length);
    badge.classList.toggle("zero", items.length === 0);
    $("approvals-empty").hidden = items.length > 0;
    const shown = new Map();
    for (const a of items) {
      const key = JSON.stringify(a);
      const kept = this.shown.get(a.id);
      shown.set(a.id, kept && kept.key === key ? kept : { key, li: this.item(a) });
    }
    this.shown = shown; // an unchanged entry keeps its node: a click on its buttons is never lost
    keepChildren($("approvals-list"), [...shown.values()].map((entry) => entry.li));
  }

  item(a) {
    const buttons = [];
    for (const [decision, label] of CHOICES) {
      buttons.push(h("button", { type: "button", dataset: { decision }, text: label,
        onclick: () => this.answer(a.id, decision, buttons) }));
    }
    return h("li", { dataset: { approval: a.id, kind: a.kind } },
      h("div", { class: "dest", text: destination(a) }),
      h("div", {}, "session ", h("code", { text: a.session_id }), ` · ${a.kind}`,
        a.kind === "request" ? ` · ${a.held} held` : ""),
      a.reason ? h("div", {}, "the sandbox says: ", h("span", { class: "why", text: a.reason })) : null,
      h("div", {}, "time left: ", h("span", { dataset: { expiresAt: a.expires_at }, text: timeLeft(a.expires_at) })),
      h("div", {}, buttons),
    );
  }
}

function timeLeft(expiresAt) {
  return expiresAt ? duration(expiresAt - Date.now() / 1000) : "until decided or the session ends";
}
