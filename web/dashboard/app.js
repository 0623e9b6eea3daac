// PMO's dashboard: one page over the HTTP API. It signs in with an API key, which it
// keeps in this tab's sessionStorage and sends with every call, so it can do exactly
// what the key's role allows. It renders with textContent only, never as HTML.

const keyStore = "pmo.key";
const pollMs = 3000;
const phases = ["waiting", "preparing", "transferring", "paused", "awaiting-cutover", "cutover", "recording", "done"];

let me = null;
let timer = null;
// pool is the pool the page shows: the key's own (me.pool) until another is chosen.
let pool = null;

const $ = (sel) => document.querySelector(sel);

// api calls the API with the key. A 401 signs out; any other error is thrown with
// the problem's detail.
async function api(path, {method = "GET", body, key = sessionStorage.getItem(keyStore)} = {}) {
  const headers = {Authorization: "Bearer " + key};
  // The fleet's routes address the chosen pool; the others ignore the parameter.
  if (me && pool && pool !== me.pool) path += (path.includes("?") ? "&" : "?") + "pool=" + encodeURIComponent(pool);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await res.json().catch(() => ({}));
  if (res.status === 401 && key === sessionStorage.getItem(keyStore)) {
    signOut("Signed out: " + (data.detail || "the key was refused"));
  }
  if (!res.ok) {
    const err = new Error(data.detail || `${method} ${path}: ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    tr.append(c instanceof Node ? wrapCell(c) : el("td", c));
  }
  return tr;
}

function wrapCell(node) {
  if (node.tagName === "TD") return node;
  const td = document.createElement("td");
  td.append(node);
  return td;
}

function fill(table, rows, empty) {
  const body = $(table + " tbody");
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    const td = el("td", empty, "muted");
    td.colSpan = $(table + " thead tr").children.length;
    const tr = document.createElement("tr");
    tr.append(td);
    body.append(tr);
  }
}

function duration(seconds) {
  if (seconds === undefined || seconds === null || !isFinite(seconds)) return "";
  const neg = seconds < 0;
  let s = Math.round(Math.abs(seconds));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const text = h > 0 ? `${h}h ${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m ${String(s).padStart(2, "0")}s` : `${s}s`;
  return neg ? "-" + text : text;
}

function rate(bytesPerSec) {
  return (bytesPerSec / (1 << 20)).toFixed(1) + " MiB/s";
}

function time(t) {
  if (!t) return "";
  const d = new Date(t);
  return isNaN(d) ? t : d.toLocaleString();
}

function flash(text, ok) {
  const f = $("#flash");
  f.textContent = text;
  f.className = ok ? "ok" : "bad";
}

function signOut(message) {
  sessionStorage.removeItem(keyStore);
  me = null;
  pool = null;
  $("#pool-choice").hidden = true;
  clearTimeout(timer);
  $("#app").hidden = true;
  $("#sign-out").hidden = true;
  $("#fleet-link").hidden = true;
  $("#who").textContent = "";
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

async function signIn(key) {
  me = await api("/me", {key});
  sessionStorage.setItem(keyStore, key);
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#sign-out").hidden = false;
  pool = me.pool;
  $("#pool").textContent = "pool " + me.pool;
  $("#who").textContent = `${me.name} (${me.role})`;
  const link = $("#fleet-link");
  link.href = me.fleet_web_ui;
  link.hidden = false;
  await pools();
  // A viewer sees everything and changes nothing.
  for (const e of document.querySelectorAll(".operator")) e.hidden = me.role === "viewer";
  await refresh();
}

// pools offers every pool in the header once there is more than one: choosing one
// shows its fleet, and its fleet's page in the Temporal Web UI.
async function pools() {
  const list = await api("/pools");
  const select = $("#pool-select");
  select.replaceChildren(...list.map((p) => {
    const o = el("option", `${p.pool} (${p.sites.length} site${p.sites.length === 1 ? "" : "s"})`);
    o.value = p.pool;
    o.selected = p.pool === pool;
    return o;
  }));
  const many = list.length > 1;
  $("#pool-choice").hidden = !many;
  $("#pool").hidden = many;
  select.onchange = () => {
    pool = select.value;
    const p = list.find((x) => x.pool === pool);
    if (p) $("#fleet-link").href = p.fleet_web_ui;
    refresh();
  };
}

// refresh reads everything the page shows; each part fails on its own.
async function refresh() {
  clearTimeout(timer);
  const parts = await Promise.allSettled([connectors(), plan(), waves(), migrations(), audit()]);
  parts.push(...await Promise.allSettled([timelines()]));
  const failed = parts.filter((p) => p.status === "rejected").map((p) => p.reason.message);
  $("#updated").textContent = "Updated " + new Date().toLocaleTimeString() + (failed.length ? " — " + failed.join("; ") : "");
  if (me) timer = setTimeout(refresh, pollMs);
}

let knownSites = [];

function setSites(sites) {
  sites = [...new Set(sites)].filter(Boolean).sort();
  if (sites.join() === knownSites.join()) return;
  knownSites = sites;
  for (const select of document.querySelectorAll("select.sites")) {
    const keep = select.value;
    const any = select.id === "f-site" ? [new Option("any", "")] : [];
    select.replaceChildren(...any, ...sites.map((s) => new Option(s, s)));
    if (any.length > 0 || sites.includes(keep)) select.value = keep;
  }
}

// The sites' charts change by the hour and the tick, not by the second: they are
// read every timelineMs.
const timelineMs = 15000;
let timelineAt = 0;
const charts = new Map();

async function timelines() {
  // A site seen for the first time gets its charts at once; the others every timelineMs.
  const due = Date.now() - timelineAt >= timelineMs;
  const sites = due ? knownSites : knownSites.filter((s) => !charts.has(s));
  if (sites.length === 0) return;
  if (due) timelineAt = Date.now();
  // Each site's box first, in the sites' order, whatever order the answers come in.
  for (const site of knownSites) {
    if (document.getElementById("site-" + site)) continue;
    const box = el("div", null, "site");
    box.id = "site-" + site;
    box.dataset.site = site;
    box.append(el("h3", site));
    $("#sites").append(box);
  }
  await Promise.all(sites.map(timeline));
}

// nowLine draws a vertical line at the time the data was read (now.t, in seconds).
function nowLine(now) {
  return {hooks: {draw: [(u) => {
    const x = u.valToPos(now.t, "x", true);
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#b54708";
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.restore();
  }]}};
}

async function timeline(site) {
  const t = await api(`/sites/${encodeURIComponent(site)}/timeline?hours=48`);
  const xs = t.hours.map((h) => Date.parse(h.hour) / 1000);
  const v = (k) => t.hours.map((h) => h[k] ?? null);
  const demand = [xs, v("forecast_hi"), v("forecast_lo"), v("forecast"), v("actual")];
  const capacity = [xs, v("planned_connectors"), v("live_connectors"), v("busy_connectors")];
  const old = charts.get(site);
  if (old) {
    old.now.t = Date.parse(t.now) / 1000;
    old.demand.setData(demand);
    old.capacity.setData(capacity);
    return;
  }
  const now = {t: Date.parse(t.now) / 1000};
  const box = document.getElementById("site-" + site);
  const width = Math.max(360, Math.min(640, Math.floor(($("#sites").clientWidth - 40) / 2)));
  const step = {paths: uPlot.paths.stepped({align: 1})};
  const demandChart = new uPlot({
    title: "arrivals an hour", width, height: 220, plugins: [nowLine(now)],
    series: [{},
      {label: "high", stroke: "rgba(36,87,197,0.35)"},
      {label: "low", stroke: "rgba(36,87,197,0.35)"},
      {label: "forecast", stroke: "#2457c5", width: 2},
      {label: "actual", stroke: "#1d2330", width: 0, points: {show: true, size: 6, fill: "#1d2330"}}],
    bands: [{series: [1, 2], fill: "rgba(36,87,197,0.12)"}],
  }, demand, box);
  const capacityChart = new uPlot({
    title: "connectors", width, height: 220, plugins: [nowLine(now)],
    series: [{},
      {label: "planned", stroke: "#2457c5", width: 2, ...step},
      {label: "running", stroke: "#067647", width: 2, ...step},
      {label: "copying", stroke: "#b54708", width: 1, ...step}],
  }, capacity, box);
  charts.set(site, {now, demand: demandChart, capacity: capacityChart});
}

async function connectors() {
  const list = await api("/connectors");
  setSites([...knownSites, ...list.map((c) => c.site)]);
  fill("#connectors", list.map((c) => row([
    el("td", c.id),
    c.site,
    c.unreachable ? el("td", c.state + ", unreachable", "state-unhealthy") : el("td", c.state, "state-" + c.state),
    c.size + (c.external ? " (external)" : ""),
    el("td", `${c.used.tasks} of ${c.allocated.tasks}`, "num"),
    el("td", rate(c.allocated.bandwidth_bytes_per_sec), "num"),
    el("td", rate(c.used.bandwidth_bytes_per_sec), "num"),
    el("td", c.reason || "", "muted"),
  ])), "No connectors yet.");
  return list;
}

async function plan() {
  const p = await api("/plan");
  setSites([...knownSites, ...(p.targets || []).map((t) => t.site)]);
  $("#reasons").replaceChildren(...(p.reasons || []).map((r) => el("li", r)));
  fill("#bottlenecks", (p.bottlenecks || []).map((b) => row([b.site || "pool", b.kind, time(b.from), time(b.to), b.detail])),
    "None.");
  fill("#skill", (p.forecast_accuracy || []).map(skillRow), "No forecast hour has passed yet.");
}

// skillRow is a site's forecast skill: the band's coverage, and its pinball loss
// against the hour-of-day rate's, over the hours that stored both.
function skillRow(a) {
  const scored = a.skill_scored > 0;
  return row([
    a.site,
    el("td", a.scored, "num"),
    el("td", Math.round(a.coverage * 100) + "%", "num"),
    el("td", scored ? a.pinball.toFixed(3) : "", "num"),
    el("td", scored ? a.baseline_pinball.toFixed(3) : "", "num"),
    el("td", scored ? a.skill.toFixed(2) : "not scored yet", scored && a.skill <= 0 ? "num breached" : "num"),
  ]);
}

// audit shows the two trails: every change made through the API, by key, and what
// the fleet decided and was told, with who and why.
async function audit() {
  const [calls, fleet] = await Promise.all([api("/audit?limit=20"), api("/overrides")]);
  fill("#audit", calls.map((a) => row([time(a.at), `${a.key_name} (${a.role})`, `${a.method} ${a.path}`,
    el("td", a.status, a.status >= 400 ? "breached" : "")])), "No changes yet.");
  const entries = (fleet.audit || []).slice().reverse();
  fill("#decisions", entries.map((a) => row([time(a.at), a.who, a.action, a.why, a.detail])), "Nothing yet.");
}

// waves lists the newest waves of the pool shown, each with its progress, its ETA
// against its deadline, and the actions on the whole wave.
async function waves() {
  const list = (await api("/waves?limit=20")).filter((w) => !pool || w.pool === pool);
  fill("#waves", list.map(waveRow), "No waves yet: plan one with POST /forecast (plan: true), then POST /waves.");
}

function waveRow(w) {
  const link = el("a", w.id);
  link.href = w.web_ui;
  link.target = "_blank";
  link.rel = "noopener";
  link.title = "this wave's workflow in the Temporal Web UI";
  const planned = w.planned || w.started;
  const progress = document.createElement("progress");
  progress.max = Math.max(1, planned);
  progress.value = w.succeeded + w.failed;
  const progressCell = document.createElement("td");
  progressCell.append(progress, el("span", ` ${w.succeeded + w.failed} of ${planned} ended`, "muted"));
  if (w.awaiting_operator > 0) {
    progressCell.append(el("span", `, ${w.awaiting_operator} awaiting an operator`, "breached"));
  }
  const state = w.status !== "Running" ? (w.cancelled ? "cancelled" : "ended") : w.cancelled ? "cancelling" : w.paused ? "paused" : "running";
  const late = w.late_seconds > 0;
  const tr = row([
    wrapCell(link),
    el("td", state, "wave-" + state),
    progressCell,
    el("td", w.failed, w.failed > 0 ? "num breached" : "num"),
    el("td", w.breached, w.breached > 0 ? "num breached" : "num"),
    el("td", w.bytes_planned ? Math.round(100 * w.bytes_done / w.bytes_planned) + "%" : "", "num"),
    el("td", w.eta ? time(w.eta) + (late ? " (late)" : "") : "", late ? "breached" : ""),
    el("td", w.report ? reportText(w.report) : "", "report"),
    waveActions(w, state),
  ]);
  tr.dataset.id = w.id;
  tr.dataset.state = state;
  return tr;
}

// reportText is an ended wave's report in a line: outcomes, bytes, time against the
// plan, the connectors that served it.
function reportText(r) {
  const o = r.outcomes;
  const parts = [`${o.succeeded} succeeded`];
  if (o.sla_breached) parts.push(`${o.sla_breached} past SLA`);
  if (o.failed) parts.push(`${o.failed} failed`);
  if (o.cancelled) parts.push(`${o.cancelled} cancelled`);
  if (o.not_run) parts.push(`${o.not_run} not run`);
  const took = duration((Date.parse(r.ended_at) - Date.parse(r.started_at)) / 1000);
  const timing = r.late_seconds > 0 ? `${duration(r.late_seconds)} past the deadline` : "within the deadline";
  return `${parts.join(", ")}; ${(r.bytes / 1048576).toFixed(1)} MiB by ${(r.connectors || []).length} connector(s) in ${took}, ${timing}`;
}

function waveActions(w, state) {
  const td = document.createElement("td");
  if (me.role === "viewer") return td;
  const acts = {running: ["pause", "cancel", "retry"], paused: ["resume", "cancel"]}[state] ||
    (w.failed > 0 && !w.cancelled ? ["retry"] : []);
  if (w.require_approval && !w.approved && w.status === "Running" && !w.cancelled) acts.unshift("approve");
  for (const action of acts) {
    const b = el("button", action[0].toUpperCase() + action.slice(1));
    b.type = "button";
    b.dataset.action = action;
    b.addEventListener("click", () => control(w.id, action, b, "wave"));
    td.append(b);
  }
  return td;
}

async function migrations() {
  const q = new URLSearchParams({limit: "50"});
  for (const [param, sel] of [["state", "#f-state"], ["site", "#f-site"], ["sla_tier", "#f-tier"]]) {
    const v = $(sel).value.trim();
    if (v) q.set(param, v);
  }
  const list = (await api("/migrations?" + q)).migrations;
  // The list comes from Temporal's visibility store; a running migration's progress
  // comes from asking the migration itself.
  const details = await Promise.all(list.map((m) =>
    m.workflow_status === "Running" ? api("/migrations/" + encodeURIComponent(m.id)).catch(() => null) : null));
  fill("#migrations", list.map((m, i) => migrationRow(m, details[i])), "No migrations match.");
}

function migrationRow(m, d) {
  const link = el("a", m.id);
  link.href = m.web_ui;
  link.target = "_blank";
  link.rel = "noopener";
  link.title = "this migration in the Temporal Web UI";
  const phase = (d && d.phase) || m.phase;
  const progress = document.createElement("progress");
  progress.max = 1;
  progress.value = d ? d.progress : phase === "done" ? 1 : 0;
  const pct = el("span", " " + Math.round(progress.value * 100) + "%", "muted");
  const progressCell = document.createElement("td");
  progressCell.append(progress, pct);
  const sla = el("td", d ? duration(d.sla_seconds_left) : "", d && (d.breached || d.sla_seconds_left < 0) ? "breached" : "");
  const tr = row([
    wrapCell(link),
    m.vm_id || (d && d.vm_id) || "",
    m.site,
    m.sla_tier,
    el("td", m.workflow_status === "Running" ? phase : `${phase} (${m.workflow_status.toLowerCase()})`, "phase-" + phase),
    progressCell,
    el("td", d && d.eta_seconds ? duration(d.eta_seconds) : "", "num"),
    sla,
    (d && d.connector_id) || m.connector || "",
    actions(m, phase),
  ]);
  tr.dataset.id = m.id;
  tr.dataset.phase = phase;
  return tr;
}

// actionsFor are the controls that make sense in each phase.
function actionsFor(phase) {
  switch (phase) {
    case "paused": return ["resume", "cancel"];
    case "awaiting-cutover": return ["approve", "cancel"];
    case "waiting": case "preparing": case "transferring": return ["pause", "cancel"];
    default: return [];
  }
}

function actions(m, phase) {
  const td = document.createElement("td");
  if (m.workflow_status !== "Running" || me.role === "viewer") return td;
  for (const action of actionsFor(phase)) {
    const b = el("button", action[0].toUpperCase() + action.slice(1));
    b.type = "button";
    b.dataset.action = action;
    b.addEventListener("click", () => control(m.id, action, b));
    td.append(b);
  }
  return td;
}

function why() {
  const v = $("#why").value.trim();
  if (!v) {
    flash("Say why in the ‘Why’ box first: every action is audited with who and why.", false);
    $("#why").focus();
  }
  return v;
}

async function control(id, action, button, noun = "migration") {
  const reason = why();
  if (!reason) return;
  button.disabled = true;
  try {
    await api(`/${noun}s/${encodeURIComponent(id)}/${action}`, {method: "POST", body: {who: me.name, why: reason}});
    flash(`${action}: sent to ${noun} ${id}.`, true);
  } catch (e) {
    flash(`${action} ${id}: ${e.message}`, false);
  }
  await refresh();
}

async function submitForm(form, path, body, done) {
  const reason = why();
  if (!reason) return;
  try {
    await api(path, {method: "POST", body: {...body, who: me.name, why: reason}});
    flash(done, true);
  } catch (e) {
    flash(e.message, false);
  }
  await refresh();
}

function init() {
  const state = $("#f-state");
  state.append(...phases.map((p) => new Option(p, p)));
  for (const sel of ["#f-state", "#f-site"]) $(sel).addEventListener("change", refresh);
  $("#f-tier").addEventListener("change", refresh);
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = $("#key").value.trim();
    try {
      await signIn(key);
      $("#key").value = "";
    } catch (e) {
      $("#login-error").textContent = e.status === 401 ? "That key was refused: " + e.message : e.message;
    }
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#scale-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    submitForm(ev.target, "/scale", {action: "provision", site: f.get("site"), count: Number(f.get("count")), size: f.get("size")},
      `Provisioning ${f.get("count")} ${f.get("size")} connector(s) at ${f.get("site")}.`);
  });
  $("#pin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    submitForm(ev.target, "/overrides", {kind: "pin", site: f.get("site"), min: Number(f.get("min")), max: Number(f.get("max")), ttl: f.get("ttl")},
      `${f.get("site")} pinned to ${f.get("min")}–${f.get("max")} connectors for ${f.get("ttl")}.`);
  });
  const key = sessionStorage.getItem(keyStore);
  if (key) {
    signIn(key).catch((e) => signOut(e.message));
  } else {
    signOut();
  }
}

init();
