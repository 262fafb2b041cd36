// biopilot cockpit, unit panels: soft-sensor estimates with intervals, MSPC (T2, SPE, limits,
// contributions), controller mode and recommendation, QC results with hologram overlays.
// Uses api, el, fmt, label, darkLayout and PLOT_CONFIG of cockpit.js.
"use strict";

const AMBER = "#e6b422";
const RED = "#e5533d";

function loadPanels(batch) {
  const base = `/api/batches/${encodeURIComponent(batch)}`;
  const panels = [["estimates", renderEstimates], ["mspc", renderMspc],
    ["controller", renderController], ["qc", renderQc]];
  return Promise.all(panels.map(([name, render]) => api("GET", `${base}/${name}`)
    .then(render)
    .catch((err) => { $(`${name}-note`).textContent = err.message; })));
}

function renderEstimates(data) {
  $("estimates-note").textContent = data.detail || "";
  $("estimates").classList.toggle("hidden", !data.estimates.length);
  const pick = $("est-tag");
  pick.replaceChildren(...data.estimates.map((e) => el("option", { value: e.tag }, e.tag)));
  pick.classList.toggle("hidden", data.estimates.length < 2);
  pick.onchange = () => plotEstimate(data.estimates.find((e) => e.tag === pick.value));
  if (data.estimates.length) return plotEstimate(data.estimates[0]);
  return null;
}

function plotEstimate(e) {
  const traces = [];
  if (e.low && e.high) {
    traces.push({ x: e.time_utc, y: e.low, mode: "lines", line: { width: 0 }, hoverinfo: "skip",
      name: "low", showlegend: false });
    traces.push({ x: e.time_utc, y: e.high, mode: "lines", line: { width: 0 }, fill: "tonexty",
      fillcolor: "rgba(127,178,217,0.25)", name: "interval" });
  }
  traces.push({ x: e.time_utc, y: e.value, mode: "lines", line: { color: "#7fb2d9", width: 1.5 },
    name: "estimate" });
  if (e.measured) {
    traces.push({ x: e.measured.time_utc, y: e.measured.value, mode: "markers", name: "measured",
      marker: { color: "#e4e6e8", size: 7, symbol: "diamond" } });
  }
  const layout = darkLayout({ showlegend: true, legend: { orientation: "h", y: 1.12 },
    yaxis: { title: { text: label(e.tag, e.units) } } });
  return Plotly.react("estimates", traces, layout, PLOT_CONFIG);
}

function limitLine(x, value, color, axis) {
  return { x: [x[0], x[x.length - 1]], y: [value, value], mode: "lines", hoverinfo: "y",
    line: { color, width: 1, dash: "dash" }, yaxis: axis };
}

function renderMspc(m) {
  const shown = Boolean(m.points);
  $("mspc").classList.toggle("hidden", !shown);
  $("mspc-contrib").classList.toggle("hidden", !shown || !m.latest);
  if (!shown) {
    $("mspc-note").textContent = m.detail || "no MSPC data";
    return null;
  }
  const x = m.time_utc;
  const L = m.limits || {};
  const alarm = m.alarm ? " · MSPC ALARM" : "";
  $("mspc-note").textContent = m.deployed ? `model ${m.model_file} · ${m.n_training_batches} ` +
    `training batches · limits 95 % (amber) and 99 % (red)${alarm}` : m.detail;
  const limits = (axis, stat) => ["95", "99"].filter((p) => L[`${stat}_${p}`] !== undefined)
    .map((p) => limitLine(x, L[`${stat}_${p}`], p === "95" ? AMBER : RED, axis));
  const traces = [
    { x, y: m.t2, mode: "lines", line: { color: "#7fb2d9", width: 1.5 }, name: "T2" },
    ...limits("y", "t2"),
    { x, y: m.spe, mode: "lines", line: { color: "#59b36b", width: 1.5 }, name: "SPE",
      xaxis: "x", yaxis: "y2" },
    ...limits("y2", "spe"),
  ];
  const layout = darkLayout({ yaxis: { title: { text: "T2" }, domain: [0.55, 1] },
    yaxis2: { title: { text: "SPE" }, domain: [0, 0.45] }, xaxis: { anchor: "y2" } });
  const done = [Plotly.react("mspc", traces, layout, PLOT_CONFIG)];
  if (m.latest) done.push(plotContributions(m.latest));
  return Promise.all(done);
}

function plotContributions(latest) {
  const top = (c) => Object.entries(c).slice(0, 8).reverse();
  const bars = ["spe", "t2"].map((stat) => {
    const rows = top(latest.contributions[stat]);
    return { type: "bar", orientation: "h", name: stat.toUpperCase(), x: rows.map((r) => r[1]),
      y: rows.map((r) => r[0]), marker: { color: stat === "spe" ? "#59b36b" : "#7fb2d9" } };
  });
  const layout = darkLayout({ barmode: "group", showlegend: true, margin: { l: 150, r: 20, t: 30, b: 40 },
    title: { text: `contributions at ${latest.time_utc.slice(0, 16)}Z`, font: { size: 12 } },
    xaxis: { title: { text: "contribution" } } });
  return Plotly.react("mspc-contrib", bars, layout, PLOT_CONFIG);
}

function renderController(c) {
  $("controller-note").textContent = c.detail || "";
  $("controller-mode").textContent = c.mode || "—";
  $("controller-mode").className = `badge mode-${c.mode || "none"}`;
  $("controller-since").textContent = c.mode_since_utc ? `since ${c.mode_since_utc.slice(0, 16)}Z` : "";
  const r = c.recommendation;
  const rows = r ? [
    ["decided (UTC)", r.time_utc.slice(0, 19).replace("T", " ")],
    ...Object.entries(r.setpoints).map(([k, v]) => [k, fmt(v)]),
    ["predicted harvest [kg]", fmt(r.predicted_harvest_kg)], ["solver", r.status || "—"],
    ...(r.fallback_reason ? [["fallback", r.fallback_reason]] : []),
  ] : [];
  $("controller-rec").tBodies[0].replaceChildren(...rows.map(([k, v]) =>
    el("tr", {}, el("th", {}, k), el("td", {}, v))));
  const form = $("controller-accept");
  form.hidden = !(r && c.mode === "advisory");
  form.dataset.th = r ? String(r.t_h) : "";
}

// Accept the advisory recommendation: the controller of the unit reads the acceptance from
// the historian and writes the setpoints (the server checks the role and audits it).
$("controller-accept").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  try {
    const r = await api("POST", `/api/batches/${encodeURIComponent(state.batch)}/controller/accept`,
      { t_h: Number(form.dataset.th), reason: $("controller-reason").value });
    $("controller-accept-msg").textContent =
      `accepted by ${r.accepted.user} (audit #${r.audit_seq})`;
  } catch (err) {
    $("controller-accept-msg").textContent = err.message;
  }
});

function renderQc(q) {
  const d = q.disposition;
  $("qc-note").textContent = d
    ? `Disposition: ${d.disposition} by ${d.author || "—"} ${d.time_utc.slice(0, 16)}Z` +
      (d.reasons && d.reasons.length ? ` — ${d.reasons.join("; ")}` : "")
    : "No QC disposition yet: release cannot be signed.";
  $("qc-note").className = `note disp-${d ? d.disposition : "none"}`;
  $("qc").tBodies[0].replaceChildren(...q.results.map((r) => {
    const a = r.body.attributes || {};
    const what = r.body.assay || r.body.method || "—";
    const values = a.n_cells !== undefined
      ? `${a.n_cells} cells · viability ${fmt(a.viability)} · confluence ${fmt(a.confluence)}` +
        (a.clustered_fraction > 0  // area the segmentation could not split into cells
          ? ` · ${(100 * a.clustered_fraction).toFixed(0)} % in unsplit clumps` : "") +
        (typeof a.hologram_agreement === "number"  // share of the hologram the phase explains
          ? ` · hologram agreement ${fmt(a.hologram_agreement)}` : "")
      : Object.entries(r.body).filter(([k]) => k !== "assay")
        .map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : fmt(v)}`).join(" · ");
    const overlay = el("td", {});
    if (r.overlay_url) {
      const img = el("img", { class: "overlay", src: r.overlay_url, alt: `overlay ${r.record_id}`,
        "data-record": r.record_id });
      overlay.append(el("a", { href: r.overlay_url, target: "_blank" }, img));
    }
    return el("tr", { "data-record": r.record_id }, el("td", {}, r.time_utc.slice(0, 16) + "Z"),
      el("td", {}, r.author || "—"), el("td", {}, what), el("td", { class: "note" }, values), overlay);
  }));
}

// Switch the controller's mode (the server checks the role: automatic needs an engineer).
$("controller-mode-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const r = await api("POST", `/api/batches/${encodeURIComponent(state.batch)}/controller/mode`,
      { mode: $("controller-mode-select").value, reason: $("controller-mode-reason").value });
    $("controller-mode-msg").textContent =
      `switched to ${r.switched.mode} by ${r.switched.user} (audit #${r.audit_seq})`;
  } catch (err) {
    $("controller-mode-msg").textContent = err.message;
  }
});
