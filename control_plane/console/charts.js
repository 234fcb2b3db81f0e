// Small SVG charts drawn here (no library). Labels go in as SVG text nodes (textContent).

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

/**
 * Requests per second, allowed against denied, over the last `windowS` seconds in `bucketS` buckets.
 * events: decisions with `time` (epoch seconds) and `verdict`; nowS: the right edge.
 */
export function rateSeries(events, nowS, windowS = 300, bucketS = 5) {
  const n = Math.ceil(windowS / bucketS);
  const allowed = new Array(n).fill(0);
  const denied = new Array(n).fill(0);
  const start = nowS - n * bucketS;
  for (const e of events) {
    if (e.time < start || e.time > nowS || e.verdict === "event") continue;
    const i = Math.min(n - 1, Math.floor((e.time - start) / bucketS));
    if (e.verdict === "allow") allowed[i] += 1 / bucketS;
    else denied[i] += 1 / bucketS;
  }
  return { allowed, denied, windowS };
}

/** Draws rateSeries() output as two lines into `container`. */
export function rateChart(container, series, width = 420, height = 140) {
  const pad = { left: 36, right: 8, top: 16, bottom: 18 };
  const max = Math.max(0.2, ...series.allowed, ...series.denied);
  const n = series.allowed.length;
  const x = (i) => pad.left + (i / Math.max(1, n - 1)) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  svg.append(
    s("line", { class: "axis", x1: pad.left, y1: y(0), x2: width - pad.right, y2: y(0) }),
    s("line", { class: "axis", x1: pad.left, y1: pad.top, x2: pad.left, y2: y(0) }),
    s("text", { x: 2, y: pad.top + 4 }, max.toFixed(1)),
    s("text", { x: 2, y: y(0) }, "0"),
    s("text", { x: pad.left, y: height - 4 }, `-${Math.round(series.windowS / 60)} min`),
    s("text", { x: width - pad.right - 24, y: height - 4 }, "now"),
  );
  for (const [name, values] of [["allowed", series.allowed], ["denied", series.denied]]) {
    const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(s("polyline", { class: name, points }));
  }
  svg.append(
    s("rect", { class: "legend-allowed", x: width - 150, y: 4, width: 8, height: 8 }),
    s("text", { x: width - 138, y: 12 }, "allowed"),
    s("rect", { class: "legend-denied", x: width - 80, y: 4, width: 8, height: 8 }),
    s("text", { x: width - 68, y: 12 }, "denied"),
  );
  container.replaceChildren(svg);
}

/** The `limit` largest of items [{label, value}], as horizontal bars; format(value) writes the number. */
export function barChart(container, items, format = String, limit = 8, width = 420) {
  const top = [...items].sort((a, b) => b.value - a.value).slice(0, limit);
  const row = 20;
  const height = Math.max(row, top.length * row) + 4;
  const labelW = 170;
  const max = Math.max(1, ...top.map((item) => item.value));
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  if (!top.length) svg.append(s("text", { x: 4, y: 14 }, "no requests yet"));
  top.forEach((item, i) => {
    const barW = ((width - labelW - 70) * item.value) / max;
    const label = item.label.length > 28 ? `${item.label.slice(0, 27)}…` : item.label;
    const text = s("text", { x: 4, y: i * row + 14 }, label);
    text.append(s("title", {}, item.label));
    svg.append(
      text,
      s("rect", { class: "bar", x: labelW, y: i * row + 4, width: Math.max(1, barW), height: row - 6 }),
      s("text", { x: labelW + barW + 4, y: i * row + 14 }, format(item.value)),
    );
  });
  container.replaceChildren(svg);
}

/** Requests and bytes per destination (host:port) over `events`. */
export function destinations(events) {
  const byKey = new Map();
  for (const e of events) {
    if (!e.host) continue;
    const key = e.port ? `${e.host}:${e.port}` : e.host;
    const entry = byKey.get(key) || { label: key, requests: 0, bytes: 0 };
    entry.requests += 1;
    entry.bytes += (e.bytes_sent || 0) + (e.bytes_received || 0);
    byKey.set(key, entry);
  }
  return [...byKey.values()];
}
