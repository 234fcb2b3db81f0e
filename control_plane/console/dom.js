// Building DOM nodes. Text always goes in as text nodes (textContent), never as HTML: hosts, paths and
// reasons come from sandboxes. Nothing in the console parses a string as HTML.

/** h("td", {class: "x", text: "..."}, child, ...): an element; string children become text nodes. */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export const $ = (id) => document.getElementById(id);

/** "3m 12s" for a number of seconds; "—" for none. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function bytes(n) {
  if (!n) return "0";
  const units = ["B", "kB", "MB", "GB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function clock(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleTimeString();
}

/**
 * Makes `parent`'s children exactly `nodes`, in order, touching the DOM only where it differs: a row that
 * stays the same node keeps a click that is under way.
 */
export function keepChildren(parent, nodes) {
  const current = [...parent.children];
  if (current.length !== nodes.length || current.some((node, i) => node !== nodes[i])) parent.replaceChildren(...nodes);
}
