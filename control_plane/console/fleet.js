// The fleet's numbers from /metrics (Prometheus text, parsed here): sessions, create latency (warm and
// cold) and the audit lag, as means over the last sampling interval, with a sparkline of recent samples.

import { h, clear, $ } from "./dom.js";

/** Prometheus text exposition -> [{name, labels: {..}, value}]. Comments and malformed lines are skipped. */
export function parseMetrics(text) {
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split("\n")) {
    if (!raw || raw.startsWith("#")) continue;
    const m = line.exec(raw);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || "").matchAll(label)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

function total(samples, name, labels = {}) {
  return samples
    .filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))
    .reduce((sum, x) => sum + x.value, 0);
}

/** The numbers the console shows, from parsed samples. Histograms give {sum, count}. */
export function fleetNumbers(samples) {
  const histogram = (name, labels) => ({
    sum: total(samples, `${name}_sum`, labels), count: total(samples, `${name}_count`, labels),
  });
  return {
    sessions: total(samples, "sandgate_sessions"),
    warmPool: total(samples, "sandgate_warm_pool_ready"),
    warm: histogram("sandgate_session_create_seconds", { start: "warm" }),
    cold: histogram("sandgate_session_create_seconds", { start: "cold" }),
    lag: histogram("sandgate_audit_lag_seconds", {}),
    decisions: total(samples, "sandgate_decisions_total"),
  };
}

/** The mean of a histogram between two readings; over all time when nothing new was observed. */
function mean(now, before) {
  const count = now.count - (before ? before.count : 0);
  if (count > 0) return (now.sum - (before ? before.sum : 0)) / count;
  return now.count ? now.sum / now.count : null;
}

const ms = (seconds) => (seconds === null ? "—" : `${(seconds * 1000).toFixed(seconds < 0.1 ? 1 : 0)} ms`);

export class Fleet {
  constructor() {
    this.history = []; // readings, newest last
  }

  async refresh() {
    const response = await fetch("/metrics", { cache: "no-store", credentials: "omit" });
    if (!response.ok) return;
    this.history.push({ at: Date.now(), numbers: fleetNumbers(parseMetrics(await response.text())) });
    if (this.history.length > 60) this.history.shift();
    this.render();
  }

  render() {
    const [now, before] = [this.history.at(-1), this.history.at(-2)];
    if (!now) return;
    const n = now.numbers;
    const b = before && before.numbers;
    const cards = [
      ["sessions", String(n.sessions), `warm pool ${n.warmPool}`, (x) => x.sessions],
      ["create latency, warm", ms(mean(n.warm, b && b.warm)), `${n.warm.count} created`, null],
      ["create latency, cold", ms(mean(n.cold, b && b.cold)), `${n.cold.count} created`, null],
      ["audit lag", ms(mean(n.lag, b && b.lag)), `${n.decisions} decisions`, null],
    ];
    clear($("fleet")).append(...cards.map(([label, value, note, pick]) => h("div", { class: "card", dataset: { metric: label } },
      h("div", { class: "label", text: label }), h("div", { class: "value", text: value }),
      h("div", { class: "label", text: note }), pick ? this.sparkline(pick) : null)));
  }

  sparkline(pick) {
    const values = this.history.map((r) => pick(r.numbers));
    const width = 160, height = 28, max = Math.max(1, ...values);
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("class", "allowed");
    line.setAttribute("points", values.map((v, i) =>
      `${(i / Math.max(1, values.length - 1)) * width},${height - 2 - (v / max) * (height - 4)}`).join(" "));
    svg.append(line);
    return svg;
  }
}
