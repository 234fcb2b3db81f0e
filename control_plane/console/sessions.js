// The sessions table (polled), its label filter, and the row -> detail link.

import { call } from "./api.js";
import { h, $, duration, keepChildren } from "./dom.js";

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
    this.rows = new Map(); // session id -> its <tr>
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
    const shown = [...this.byId.values()].filter(matches).sort((a, b) => epoch(b.created_at) - epoch(a.created_at));
    const rows = new Map();
    for (const s of shown) {
      const tr = this.rows.get(s.id) || h("tr", { class: "clickable", dataset: { session: s.id },
        onclick: () => this.onOpen(s.id) }, COLUMNS.map(() => h("td")));
      cells(s).forEach((text, i) => { if (tr.cells[i].textContent !== text) tr.cells[i].textContent = text; });
      rows.set(s.id, tr);
    }
    this.rows = rows; // rows are updated in place, not rebuilt: a click on one is never lost to a refresh
    keepChildren($("sessions-table").tBodies[0], [...rows.values()]);
  }
}

const COLUMNS = ["id", "state", "age", "time left", "image", "rules", "report mode", "on_unlisted", "labels"];

/** A session's cells, in COLUMNS order, as text. */
function cells(s) {
  return [
    s.id, s.state, duration(now() - epoch(s.created_at)),
    s.state === "ENDED" ? "—" : duration(epoch(s.expires_at) - now()), s.image,
    s.egress.length ? s.egress.map(ruleText).join(" ") : "none", reportMode(s), s.on_unlisted,
    Object.entries(s.labels || {}).map(([k, v]) => `${k}=${v}`).join(" "),
  ];
}
