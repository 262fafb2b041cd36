// biopilot cockpit: log in, line overview, live unit trend (SSE), alarms with acknowledge,
// batch record with e-signed release. Plain JS over the REST API; Plotly for the plots.
// The unit's estimate, MSPC, controller and QC panels are in panels.js.
"use strict";

const state = { me: null, units: [], unit: null, batch: null, tag: null, source: null };
const PREFERRED_TAGS = ["do_pct", "ph", "vcd_cells_per_ml", "glucose_g_per_l", "temperature_c"];
const $ = (id) => document.getElementById(id);

async function api(method, url, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 && url !== "/api/login") showLogin("Session ended: log in again.");
  if (!r.ok) throw new Error(data.detail || `${r.status} ${r.statusText}`);
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => (k === "class" ? (node.className = v)
    : node.setAttribute(k, v)));
  children.flat().forEach((c) => node.append(c instanceof Node ? c : String(c ?? "")));
  return node;
}

function fmt(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v !== "number") return String(v);
  return Math.abs(v) >= 1e5 ? v.toExponential(3) : v.toPrecision(4);
}

function can(action) { return state.me && state.me.actions.includes(action); }

function label(tag, units) { return `${tag}${units ? " [" + units + "]" : ""}`; }

const PLOT_CONFIG = { displaylogo: false, responsive: true };

// The plots' dark HMI look; `extra` adds to it (axes are merged, not replaced).
function darkLayout(extra) {
  const axis = { gridcolor: "#444a50", zerolinecolor: "#50565c" };
  const base = {
    paper_bgcolor: "#3a3f44", plot_bgcolor: "#24282b", font: { color: "#e4e6e8", size: 11 },
    margin: { l: 60, r: 20, t: 10, b: 40 }, showlegend: false,
    xaxis: { ...axis, title: { text: "time (UTC)" } }, yaxis: { ...axis },
  };
  const out = { ...base, ...extra };
  Object.keys(extra || {}).filter((k) => /^[xy]axis\d*$/.test(k))
    .forEach((k) => { out[k] = { ...axis, ...(base[k] || {}), ...extra[k] }; });
  return out;
}

function showLogin(message) {
  stopLive();
  state.me = null;
  $("cockpit").classList.add("hidden");
  $("login-view").classList.remove("hidden");
  $("logout").classList.add("hidden");
  $("who").textContent = "";
  $("login-error").textContent = message || "";
}

async function start() {
  state.me = await api("GET", "/api/me");
  $("login-view").classList.add("hidden");
  $("cockpit").classList.remove("hidden");
  $("logout").classList.remove("hidden");
  $("who").textContent = `${state.me.full_name} (${state.me.role})`;
  $("sign-form").classList.toggle("hidden", !can("release_batch"));
  await loadOverview();
  if (state.units.length) await selectUnit(state.units[0]);
}

async function loadOverview() {
  state.units = await api("GET", "/api/overview");
  const body = $("overview").tBodies[0];
  body.replaceChildren(...state.units.map((u) => {
    const values = Object.entries(u.key_values)
      .map(([t, v]) => `${t} ${fmt(v.value)}${v.units ? " " + v.units : ""}`).join(" · ");
    const badge = el("span", { class: u.open_alarms ? "badge alert" : "badge" }, u.open_alarms);
    const row = el("tr", { "data-unit": u.unit }, el("td", {}, u.unit), el("td", {}, u.batch.code),
      el("td", {}, u.batch.product), el("td", {}, u.phase || "—"), el("td", {}, u.batch.status),
      el("td", { class: "note" }, values), el("td", {}, badge));
    if (state.unit && state.unit.unit === u.unit) row.classList.add("sel");
    row.addEventListener("click", () => selectUnit(u));
    return row;
  }));
}

async function selectUnit(u) {
  state.unit = u;
  state.batch = u.batch.code;
  $("sign-form").querySelector("button").disabled = true;
  $("unit-title").textContent = `${u.unit} — ${u.batch.code} (${u.phase || u.batch.status})`;
  document.querySelectorAll("#overview tbody tr").forEach((r) =>
    r.classList.toggle("sel", r.dataset.unit === u.unit));
  const record = await api("GET", `/api/batches/${encodeURIComponent(state.batch)}`);
  const tags = record.tags.map((t) => t.tag);
  state.tag = PREFERRED_TAGS.find((t) => tags.includes(t)) || tags[0];
  $("tag").replaceChildren(...tags.map((t) => el("option", { value: t }, t)));
  $("tag").value = state.tag;
  renderTiles(record.tags);
  await loadTrend();
  loadPanels(state.batch);  // panels.js: estimates, MSPC, controller, QC (each on its own)
  await loadAlarms();
  await loadAudit();
  await renderRecord(record);  // last: hashing the record takes a while on long batches
}

function renderTiles(tags) {
  const shown = tags.filter((t) => PREFERRED_TAGS.includes(t.tag) && t.latest);
  $("tiles").replaceChildren(...shown.map((t) => el("div", { class: "tile" },
    el("div", { class: "k" }, `${t.tag}${t.units ? " [" + t.units + "]" : ""}`),
    el("div", { class: "v", "data-tag": t.tag }, fmt(t.latest.value)))));
}

async function loadTrend() {
  const url = `/api/batches/${encodeURIComponent(state.batch)}/tags/${encodeURIComponent(state.tag)}`;
  const t = await api("GET", `${url}?max_points=1500`);
  const layout = darkLayout({ yaxis: { title: { text: label(t.tag, t.units) } } });
  const trace = { x: t.time_utc, y: t.value, mode: "lines", line: { color: "#7fb2d9", width: 1.5 },
    name: t.tag };
  await Plotly.react("trend", [trace], layout, PLOT_CONFIG);
  startLive(t.time_utc.length ? t.time_utc[t.time_utc.length - 1] : null);
}

function startLive(since) {
  stopLive();
  const q = new URLSearchParams({ unit: state.unit.unit, tags: state.tag });
  if (since) q.set("since", since);
  const source = new EventSource(`/api/live?${q}`);
  state.source = source;
  source.addEventListener("open", () => setLive(true));
  source.addEventListener("error", () => setLive(false));
  source.addEventListener("samples", (ev) => {
    const rows = JSON.parse(ev.data).rows.filter((r) => r.tag === state.tag);
    if (!rows.length) return;
    Plotly.extendTraces("trend", { x: [rows.map((r) => r.time_utc)],
      y: [rows.map((r) => r.value)] }, [0]);
    const tile = document.querySelector(`.tile .v[data-tag="${state.tag}"]`);
    if (tile) tile.textContent = fmt(rows[rows.length - 1].value);
    $("live-text").textContent = `live · last sample ${rows[rows.length - 1].time_utc.slice(0, 19)}Z`;
  });
  source.addEventListener("alarms", (ev) => renderAlarms(JSON.parse(ev.data).alarms));
  source.addEventListener("session", () => showLogin("Session ended: log in again."));
}

function stopLive() {
  if (state.source) state.source.close();
  state.source = null;
  setLive(false);
}

function setLive(on) {
  $("live-dot").classList.toggle("on", on);
  if (!on) $("live-text").textContent = "offline";
  else if ($("live-text").textContent === "offline") $("live-text").textContent = "live";
}

async function loadAudit() {
  const head = (await api("GET", "/api/audit?limit=1")).head_seq;
  const data = await api("GET", `/api/audit?start_seq=${Math.max(1, head - 9)}&limit=10`);
  $("audit-head").textContent = `${data.head_seq} entries · head ${data.head_hash.slice(0, 12)}…`;
  $("audit").tBodies[0].replaceChildren(...data.entries.reverse().map((e) => el("tr", {},
    el("td", {}, e.seq), el("td", {}, e.time_utc.slice(0, 19).replace("T", " ")),
    el("td", {}, e.actor), el("td", {}, e.action), el("td", {}, `${e.object_type} ${e.object_id}`),
    el("td", {}, e.reason))));
}

async function loadAlarms() {
  renderAlarms(await api("GET", `/api/batches/${encodeURIComponent(state.batch)}/alarms`));
}

function renderAlarms(alarms) {
  $("alarm-count").textContent = alarms.length;
  $("alarm-count").classList.toggle("alert", alarms.some((a) => a.state !== "ack_active"));
  $("alarms").tBodies[0].replaceChildren(...alarms.map((a) => {
    const action = el("td", {});
    if (a.state !== "ack_active" && can("acknowledge_alarm")) {
      const b = el("button", { type: "button", "data-alarm": a.alarm }, "Acknowledge");
      b.addEventListener("click", () => askAck(a.alarm));
      action.append(b);
    }
    return el("tr", { class: `state-${a.state}`, "data-alarm": a.alarm },
      el("td", {}, a.since_utc.slice(0, 19).replace("T", " ")), el("td", {}, a.alarm),
      el("td", { class: `sev-${a.severity}` }, a.severity), el("td", {}, a.state),
      el("td", {}, `${fmt(a.value)} / ${fmt(a.limit)}`), action);
  }));
}

function askAck(alarm) {
  $("ack-alarm").textContent = alarm;
  $("ack-reason").value = "";
  $("ack-dialog").dataset.alarm = alarm;
  $("ack-dialog").showModal();
}

async function sendAck(ev) {
  ev.preventDefault();
  const alarm = $("ack-dialog").dataset.alarm;
  const reason = $("ack-reason").value.trim();
  try {
    const url = `/api/batches/${encodeURIComponent(state.batch)}/alarms/${encodeURIComponent(alarm)}/acknowledge`;
    const r = await api("POST", url, { reason });
    $("alarm-msg").textContent = `${r.message} — audit entry #${r.audit_seq}`;
    $("ack-dialog").close();
    await loadAlarms();
    await loadOverview();
    await loadAudit();
  } catch (err) {
    $("alarm-msg").textContent = err.message;
    $("ack-dialog").close();
  }
}

async function renderRecord(record) {
  $("record-code").textContent = record.code;
  $("record-head").textContent = `${record.product} on ${record.unit} · ${record.status} · ` +
    "hashing the batch record…";
  const shown = record.records.filter((r) => r.kind !== "signature");  // listed below
  const brief = (body) => JSON.stringify(body, (k, v) =>
    (k === "overlay_png_base64" ? "[overlay PNG]" : v));  // shown in the QC panel
  $("records").replaceChildren(...shown.map((r) => el("li", {},
    `${r.time_utc.slice(0, 19)}Z ${r.kind} by ${r.author || "—"}: ${brief(r.body)}`)));
  const release = await api("GET", `/api/batches/${encodeURIComponent(record.code)}/release`);
  state.digest = release.record_digest;
  $("sign-form").querySelector("button").disabled = false;  // a digest to sign exists now
  $("record-head").textContent = `${record.product} on ${record.unit} · ${record.status} · ` +
    `record digest ${release.record_digest.slice(0, 16)}…`;
  $("signatures").replaceChildren(...(release.signatures.length ? release.signatures.map((s) =>
    el("li", { class: s.state }, `${s.manifestation} — ${s.state}${s.reason ? ": " + s.reason : ""}`))
    : [el("li", { class: "note" }, "not signed")]));
}

async function sendSignature(ev) {
  ev.preventDefault();
  const body = { password: $("sign-password").value, meaning: $("meaning").value,
    comment: $("sign-comment").value.trim(), record_digest: state.digest };
  $("sign-password").value = "";
  try {
    const r = await api("POST", `/api/batches/${encodeURIComponent(state.batch)}/signatures`, body);
    $("sign-msg").textContent = r.manifestation;
  } catch (err) {
    $("sign-msg").textContent = err.message;
  }
  await loadAudit();
  await renderRecord(await api("GET", `/api/batches/${encodeURIComponent(state.batch)}`));
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/login", { username: $("username").value, password: $("password").value });
      $("password").value = "";
      await start();
    } catch (err) { $("login-error").textContent = err.message; }
  });
  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout").catch(() => null);
    showLogin("Logged out.");
  });
  $("tag").addEventListener("change", () => { state.tag = $("tag").value; loadTrend(); });
  $("ack-form").addEventListener("submit", sendAck);
  $("ack-cancel").addEventListener("click", () => $("ack-dialog").close());
  $("sign-form").addEventListener("submit", sendSignature);
  setInterval(() => { $("clock").textContent = new Date().toISOString().slice(0, 19) + "Z"; }, 1000);
  start().catch(() => showLogin(""));
});
