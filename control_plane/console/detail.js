// One session: its fields, rates and top destinations, its rules (add and remove with ?wait=applied, the
// API's validation errors next to the field they name) and its recent decisions.

import { call } from "./api.js";
import { h, clear, $, duration } from "./dom.js";
import { rateChart, rateSeries, barChart, destinations } from "./charts.js";
import { row } from "./decisions.js";
import { reportMode, ruleText } from "./sessions.js";

const FIELDS = ["host", "ports", "methods"];

/** The form's text -> the rule body; numbers stay numbers, anything else goes as typed for the API to judge. */
export function ruleBody(host, ports, methods) {
  const list = (text) => text.split(/[\s,]+/).filter(Boolean);
  const body = { host: host.trim() };
  const portList = list(ports).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  if (portList.length) body.ports = portList;
  if (list(methods).length) body.methods = list(methods).map((m) => m.toUpperCase());
  return body;
}

/** Which form field an API error names ("egress[0].ports" -> "ports"); "_other" when none. */
export function fieldOf(error) {
  return FIELDS.find((f) => (error.field || "").includes(f)) || "_other";
}

export class Detail {
  constructor(sessions, decisions) {
    this.sessions = sessions;
    this.decisions = decisions;
    this.id = null;
    $("rule-form").addEventListener("submit", (event) => { event.preventDefault(); this.addRule(); });
  }

  /** Opens session `id`: drawn at once from the last poll, then again from a fresh GET. */
  async show(id) {
    this.id = id;
    this.rulesShown = null;
    this.render();
    try {
      this.sessions.byId.set(id, await call("GET", `/v1/sessions/${encodeURIComponent(id)}`));
    } catch (error) {
      if (error.status === 404) this.sessions.byId.delete(id); // it ended and is gone
    }
    if (this.id === id) this.render();
  }

  render() {
    if (!this.id) return;
    const s = this.sessions.byId.get(this.id);
    $("session-id").textContent = this.id;
    const fields = s ? [
      ["state", s.state], ["image", s.image], ["created", s.created_at], ["expires", s.expires_at],
      ["age", duration(Date.now() / 1000 - Date.parse(s.created_at) / 1000)],
      ["time left", duration(Date.parse(s.expires_at) / 1000 - Date.now() / 1000)],
      ["report mode", reportMode(s)], ["on_unlisted", s.on_unlisted],
      ["limits", `${s.limits.memory_mb} MB, ${s.limits.cpus} CPUs, ${s.limits.pids} pids`],
      ["labels", Object.entries(s.labels || {}).map(([k, v]) => `${k}=${v}`).join(" ") || "none"],
      ["failure", s.failure_reason || "none"],
    ] : [["state", "not in the list (ended?)"]];
    clear($("session-fields")).append(...fields.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
    const rules = s ? s.egress : [];
    if (JSON.stringify(rules) !== this.rulesShown) { // rebuilt only when they change: a click stays
      this.rulesShown = JSON.stringify(rules);
      clear($("rules-table").tBodies[0]).append(...rules.map((rule) => this.ruleRow(rule)));
    }
    this.renderDecisions();
  }

  renderDecisions() {
    if (!this.id) return;
    const mine = this.decisions.forSession(this.id);
    rateChart($("session-rate"), rateSeries(mine, Date.now() / 1000));
    barChart($("session-top"), destinations(mine).map((d) => ({ label: d.label, value: d.requests })));
    clear($("session-decisions").tBodies[0]).append(...mine.slice(-100).reverse().map((d) => row(d, false)));
  }

  ruleRow(rule) {
    return h("tr", { dataset: { host: rule.host } },
      h("td", { text: rule.host }),
      h("td", { text: (rule.ports || []).join(", ") || "443, 80" }),
      h("td", { text: (rule.methods || []).join(", ") || "all" }),
      h("td", {}, h("button", { type: "button", text: "Remove", title: ruleText(rule),
        onclick: () => this.removeRule(rule.host) })));
  }

  async addRule() {
    const form = $("rule-form");
    for (const span of form.querySelectorAll(".field-error")) span.textContent = "";
    const body = ruleBody($("rule-host").value, $("rule-ports").value, $("rule-methods").value);
    $("rule-status").textContent = "applying…";
    $("rule-add").disabled = true;
    try {
      await call("POST", `/v1/sessions/${encodeURIComponent(this.id)}/egress?wait=applied`, body);
      $("rule-status").textContent = "applied";
      form.reset();
      await this.sessions.refresh();
      this.render();
    } catch (error) {
      $("rule-status").textContent = "";
      form.querySelector(`[data-field="${fieldOf(error)}"]`).textContent = error.message;
    } finally {
      $("rule-add").disabled = false;
    }
  }

  async removeRule(host) {
    $("rules-error").textContent = "";
    try {
      const path = `/v1/sessions/${encodeURIComponent(this.id)}/egress/${encodeURIComponent(host)}?wait=applied`;
      await call("DELETE", path);
      await this.sessions.refresh();
      this.render();
    } catch (error) {
      $("rules-error").textContent = error.message;
    }
  }
}
