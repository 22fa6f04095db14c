"use strict";
// The live scoreboard: scores from /scores.json, refreshed whenever /events
// (server-sent events relaying rally.>) reports a finished or aborted game, and
// once more when they stop coming.

const FEED_MAX = 60;
const SETTLE_MS = 400;  // the scoreboard folds a result within about 0.1 s of its event
let refreshing = false;
let again = false;
let settle = null;

function text(id, value) {
  document.getElementById(id).textContent = String(value);
}

function cell(row, value, cls) {
  const td = document.createElement("td");
  td.textContent = String(value);
  if (cls) td.className = cls;
  row.appendChild(td);
}

function render(s) {
  text("games", s.games);
  text("wins-ping", s.wins.ping || 0);
  text("wins-pong", s.wins.pong || 0);
  text("draws", s.draws);
  text("aborted", s.aborted);
  text("longest", s.longest_rally);
  text("average", s.average_rally.toFixed(1));
  const last = document.querySelector("#last-games tbody");
  last.replaceChildren();
  for (const g of s.last_games) {
    const row = document.createElement("tr");
    cell(row, g.game_id);
    cell(row, g.outcome === "win" ? g.winner.toUpperCase() + " wins" : g.outcome.toUpperCase());
    cell(row, g.strokes, "num");
    cell(row, g.manager);
    last.appendChild(row);
  }
  const by = document.querySelector("#by-instance tbody");
  by.replaceChildren();
  const rows = Object.entries(s.wins_by_instance).sort((a, b) => b[1] - a[1]);
  for (const [instance, wins] of rows) {
    const row = document.createElement("tr");
    cell(row, instance);
    cell(row, wins, "num");
    by.appendChild(row);
  }
}

async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    const r = await fetch("/scores.json", { cache: "no-store" });
    if (r.ok) render(await r.json());
    else status("scoreboard: " + (await r.text()).trim(), "down");
  } catch (e) {
    status("cannot reach the proxy", "down");
  } finally {
    refreshing = false;
    if (again) { again = false; setTimeout(refresh, 100); }
  }
}

// A result's event can come before the scoreboard has folded it: one more refresh once
// the results have stopped coming for a moment shows the last of them.
function settled() {
  if (settle !== null) clearTimeout(settle);
  settle = setTimeout(() => { settle = null; refresh(); }, SETTLE_MS);
}

function status(message, cls) {
  const el = document.getElementById("status");
  el.textContent = message;
  el.className = "status " + (cls || "");
}

function describe(kind, e) {  // the lines of one event: a line a stroke
  switch (kind) {
    case "started": return [e.game_id + " started by " + e.manager];
    case "swing": return e.strokes.map((s) => e.game_id + " #" + s.stroke + " "
      + s.side.toUpperCase() + " --> " + s.result + "  " + s.instance);
    case "finished": return [e.game.game_id + " " + (e.game.winner ? "The winner is "
      + e.game.winner.toUpperCase() : "DRAW") + " (" + e.game.strokes.length + " strokes)"];
    case "aborted": return [e.game_id + " ABORTED: " + e.reason];
    default: return [kind];
  }
}

function feed(kind, data) {
  let lines;
  try { lines = describe(kind, JSON.parse(data)); } catch (e) { lines = [kind + " ?"]; }
  const list = document.getElementById("feed");
  for (const line of lines) {
    const li = document.createElement("li");
    li.className = kind;
    li.textContent = line;
    list.prepend(li);
  }
  while (list.children.length > FEED_MAX) list.lastChild.remove();
}

function listen() {
  const source = new EventSource("/events");
  source.onopen = () => { status("live", "live"); refresh(); };
  source.onerror = () => status("reconnecting…", "down");
  for (const kind of ["started", "swing"]) {
    source.addEventListener(kind, (ev) => feed(kind, ev.data));
  }
  for (const kind of ["finished", "aborted"]) {
    source.addEventListener(kind, (ev) => { feed(kind, ev.data); refresh(); settled(); });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  text("host", location.host);
  refresh();
  listen();
});
