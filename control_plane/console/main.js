// The console's entry point: sign-in, views by the URL's #fragment (which never holds the token), and the
// refresh loops. Sessions and fleet numbers are polled; decisions and approvals are streamed.

import { call, token, whenUnauthorized, ApiError } from "./api.js";
import { $, bytes } from "./dom.js";
import { Sessions } from "./sessions.js";
import { Decisions } from "./decisions.js";
import { Approvals } from "./approvals.js";
import { Detail } from "./detail.js";
import { Fleet } from "./fleet.js";
import { rateChart, rateSeries, barChart, destinations } from "./charts.js";

const VIEWS = ["overview", "sessions", "session", "decisions", "approvals"];
let started = null;

function status(id) {
  return (state) => { const node = $(id); node.textContent = state; node.className = `status ${state}`; };
}

function route() {
  const [, view = "overview", id] = location.hash.split("/");
  const name = view === "sessions" && id ? "session" : (VIEWS.includes(view) ? view : "overview");
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== name;
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === (name === "session" ? "sessions" : name));
  }
  if (started && name === "session") started.detail.show(decodeURIComponent(id));
}

function drawOverview(decisions) {
  const all = decisions.events;
  rateChart($("fleet-rate"), rateSeries(all, Date.now() / 1000));
  const dests = destinations(all);
  barChart($("top-requests"), dests.map((d) => ({ label: d.label, value: d.requests })));
  barChart($("top-bytes"), dests.map((d) => ({ label: d.label, value: d.bytes })), bytes);
}

async function every(ms, work) {
  for (;;) {
    try { await work(); } catch (error) { if (!(error instanceof ApiError)) console.warn(error); }
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
}

function start() {
  $("signin").hidden = true;
  $("app").hidden = false;
  const sessions = new Sessions((id) => { location.hash = `#/sessions/${encodeURIComponent(id)}`; });
  let detail = null;
  const decisions = new Decisions(status("decisions-status"), () => { if (detail) detail.renderDecisions(); });
  detail = new Detail(sessions, decisions);
  const approvals = new Approvals(status("approvals-status"));
  const fleet = new Fleet();
  started = { sessions, decisions, approvals, detail };
  every(2000, async () => { await sessions.refresh(); if (!$("view-session").hidden) detail.render(); });
  every(5000, () => fleet.refresh());
  every(2000, async () => drawOverview(decisions));
  route();
  document.body.dataset.ready = "true";
}

function signOut() {
  token.clear();
  location.hash = "";
  location.reload();
}

async function signIn(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  $("signin-error").textContent = "";
  token.set(value);
  try {
    await call("GET", "/v1/sessions");
    $("token").value = "";
    start();
  } catch (error) {
    token.clear();
    $("signin-error").textContent = error.status === 401 ? "That token was refused." : error.message;
  }
}

function boot() {
  whenUnauthorized(() => { if (started) signOut(); });
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  if (token.get()) start();
  else $("signin").hidden = false;
}

boot();
