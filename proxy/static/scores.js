"use strict";
// The live scoreboard. /events (server-sent events) brings the live feed: whole rallies
// of the games it shows (at a high game rate a sample of them, said by its `sampling`
// events), and `scores` whenever results came in. /scores.json gives the scores once
// when the page opens and whenever the feed reconnects.

const FEED_MAX = 60;

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
  try {
    const r = await fetch("/scores.json", { cache: "no-store" });
    if (r.ok) render(await r.json());
    else status("scoreboard: " + (await r.text()).trim(), "down");
  } catch (e) {
    status("cannot reach the proxy", "down");
  }
}

function scores(data) {
  try { render(JSON.parse(data)); } catch (e) { /* a torn event: the next one comes */ }
}

// "showing 1 in N games" while the feed skips games to stay readable; hidden otherwise.
function sampling(data) {
  let s;
  try { s = JSON.parse(data); } catch (e) { return; }
  const el = document.getElementById("sampling");
  if (!s.skipped) { el.hidden = true; return; }
  const every = s.shown ? Math.round(s.games / s.shown) : 0;
  const seconds = s.seconds >= 1.5 ? " in the last " + Math.round(s.seconds) + " s" : " in the last second";
  el.textContent = (every ? "showing 1 in " + every + " games: " : "too many games to show: ")
    + s.skipped + " of " + s.games + " skipped" + seconds;
  el.hidden = false;
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
  for (const kind of ["started", "swing", "finished", "aborted"]) {
    source.addEventListener(kind, (ev) => feed(kind, ev.data));
  }
  source.addEventListener("scores", (ev) => scores(ev.data));
  source.addEventListener("sampling", (ev) => sampling(ev.data));
}

document.addEventListener("DOMContentLoaded", () => {
  text("host", location.host);
  refresh();
  listen();
});
