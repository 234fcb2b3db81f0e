// The sessions table (polled), its label filter, and the row -> detail link.

import { call } from "./api.js";
import { h, clear, $, duration } from "./dom.js";

const now = () => Date.now() / 1000;
const epoch = (iso) => Date.parse(iso) / 1000;

/** "key=value" (or "key") -> a test on a session's labels; empty matches all. */
export function labelFilter(text) {
  const wanted = text.trim();
  if (!wanted) return () => true;
  const [key, ...rest] = wanted.split("=");
  const value = rest.join("=");
  return (s) => Object.hasOwn(s.labels || {}, key.trim()) && (!rest.length || s.labels[key.trim()] === value.trim());
}

export function reportMode(s) {
  return s.report_only ? "report only" : "enforce";
}

export function ruleText(rule) {
  const ports = rule.ports && rule.ports.length ? `:${rule.ports.join(",")}` : "";
  const methods = rule.methods && rule.methods.length ? ` ${rule.methods.join(",")}` : "";
  return `${rule.host}${ports}${methods}`;
}

export class Sessions {
  constructor(onOpen) {
    this.byId = new Map();
    this.onOpen = onOpen;
    $("label-filter").addEventListener("input", () => this.render());
  }

  async refresh() {
    const body = await call("GET", "/v1/sessions");
    this.byId = new Map(body.sessions.map((s) => [s.id, s]));
    this.render();
  }

  render() {
    const matches = labelFilter($("label-filter").value);
    const rows = [...this.byId.values()].filter(matches).sort((a, b) => epoch(b.created_at) - epoch(a.created_at));
    clear($("sessions-table").tBodies[0]).append(...rows.map((s) => this.row(s)));
  }

  row(s) {
    const labels = Object.entries(s.labels || {}).map(([k, v]) => `${k}=${v}`).join(" ");
    return h("tr", { class: "clickable", dataset: { session: s.id }, onclick: () => this.onOpen(s.id) },
      h("td", { text: s.id }),
      h("td", { class: `state-${s.state.toLowerCase()}`, text: s.state }),
      h("td", { text: duration(now() - epoch(s.created_at)) }),
      h("td", { text: s.state === "ENDED" ? "—" : duration(epoch(s.expires_at) - now()) }),
      h("td", { text: s.image }),
      h("td", { text: s.egress.length ? s.egress.map(ruleText).join(" ") : "none" }),
      h("td", { text: reportMode(s) }),
      h("td", { text: s.on_unlisted }),
      h("td", { text: labels }),
    );
  }
}
