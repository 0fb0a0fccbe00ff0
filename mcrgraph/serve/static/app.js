// The search page: plain DOM over the JSON API (GET /galleries, /graph, /plan, /jobs; POST /search, /connect).
"use strict";
const $ = (id) => document.getElementById(id);
let lastQuery = null;  // the last search's form data, so a finished connect can run it again
let pending = null;  // the two modalities no space joins yet: [query, gallery]

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(method, url, body) {
  const r = await fetch(url, { method, body });
  let data = null;
  try { data = await r.json(); } catch (_) { data = { error: `the server answered ${r.status} without JSON` }; }
  if (!r.ok) { const err = new Error(data.error || `error ${r.status}`); err.data = data; err.status = r.status; throw err; }
  return data;
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "muted";
}

async function loadGalleries() {
  const list = await api("GET", "/galleries");
  const sel = $("gallery");
  sel.innerHTML = "";
  for (const g of list) {
    const o = el("option", { value: g.name }, `${g.name} · ${g.items} ${g.modality.split("@")[0]} items`);
    o.dataset.modality = g.modality;
    o.dataset.about = g.about || `${g.items} ${g.modality} items`;
    sel.append(o);
  }
  const pick = list.find((g) => g.name === "mini-images") || list[0];
  if (pick) sel.value = pick.name;
  showAbout();
}

function showAbout() {
  const o = $("gallery").selectedOptions[0];
  $("gallery-about").textContent = o ? o.dataset.about : "No galleries yet: mcrgraph gallery add NAME FOLDER --modality image";
}

function preview(file) {
  const box = $("query-preview");
  box.innerHTML = "";
  const url = URL.createObjectURL(file);
  if (file.type.startsWith("image/")) box.append(el("img", { src: url, alt: "query image" }));
  else if (file.type.startsWith("audio/")) box.append(el("audio", { src: url, controls: "" }));
  box.append(el("div", { class: "muted" }, `query: ${file.name || "recording"}`));
}

async function search(form) {
  lastQuery = form;
  form.set("gallery", $("gallery").value);
  form.set("k", $("k").value || "12");
  status("Searching…");
  $("noplan").hidden = true;
  $("choice").hidden = true;
  try {
    const res = await api("POST", "/search", form);
    showResults(res);
  } catch (e) {
    $("results").innerHTML = "";
    $("path").hidden = true;
    if (e.status === 409 && e.data && e.data.steps && e.data.steps.length && e.data.between) showNoPlan(e.data);
    if (e.status === 409 && e.data && e.data.pins && e.data.pins.length) showChoice(e.data.pins);
    status(e.message, true);
  }
}

// Several spaces answer equally well (e.g. a connector and its adapted copy): mcrgraph does not
// choose by name, so the person does, by the query's pin; a button only where that pin alone picks.
function showChoice(pins) {
  const sources = [...new Set(pins.map((p) => p[0]))];
  if (sources.length !== pins.length) return;
  const box = $("choice-buttons");
  box.innerHTML = "";
  for (const pin of sources) {
    const b = el("button", { type: "button", class: "secondary", "data-pin": pin }, `search in ${pin.split("@")[1]}`);
    b.addEventListener("click", () => {
      const form = new FormData();
      for (const [k, v] of lastQuery.entries()) form.append(k, v);
      form.set("modality", pin);
      search(form);
    });
    box.append(b);
  }
  $("choice").hidden = false;
}

function showResults(res) {
  const n = res.results.length;
  status(`${n} best of ${res.gallery.items} in ${res.gallery.name} for the ${res.query.modality} query` +
         ` (${Math.round(res.seconds.total * 1000)} ms)`);
  $("path").hidden = false;
  $("path-text").textContent = res.path.text;
  $("retention").textContent = res.path.kind === "connector" ? "retention: measuring…" : "one space holds both modalities: nothing is lost to a connection";
  if (res.path.kind === "connector") showRetention(res.path.retention);
  const grid = $("results");
  grid.innerHTML = "";
  const gm = res.gallery.modality.split("@")[0];
  const top = Math.max(...res.results.map((r) => r.score), 1e-9);
  for (const r of res.results) {
    let media;
    if (gm === "audio") media = el("div", { class: "media sound" }, el("audio", { src: r.url, controls: "", preload: "none" }));
    else if (gm === "text") media = el("div", { class: "media text" }, r.label);
    else media = el("div", { class: "media" }, el("img", { src: r.view, alt: r.label }));
    const fill = el("div", { class: "fill", style: `width:${Math.max(0, (r.score / top) * 100).toFixed(1)}%` });
    grid.append(el("figure", { class: "hit", "data-label": r.label, "data-index": r.index },
      media,
      el("figcaption", { class: "meta" },
        el("div", { class: "name", title: r.label }, r.label),
        el("div", { class: "score" }, el("span", { class: "rank" }, `#${r.rank}`), el("div", { class: "track" }, fill), r.score.toFixed(3)))));
  }
}

async function showRetention(url) {
  try {
    const r = await api("GET", url);
    if (!r.summary.length) { $("retention").textContent = r.note || "retention: not measured"; return; }
    $("retention").textContent = "retention (held-out R@1 kept of the parent's own): " +
      r.summary.map((s) => `${s.title} ${(s.retention * 100).toFixed(0)}%`).join(" · ");
  } catch (e) { $("retention").textContent = `retention: ${e.message}`; }
}

function showNoPlan(data) {
  pending = data.between;
  $("noplan").hidden = false;
  $("noplan-text").textContent = "No space joins these two modalities yet. These connects would:";
  const ol = $("steps");
  ol.innerHTML = "";
  for (const s of data.steps) ol.append(el("li", {}, el("code", {}, s)));
  $("run-connects").disabled = false;
  $("job").hidden = true;
}

async function runConnects() {
  if (!lastQuery) return;
  const form = new FormData();
  form.set("a", pending[0]);
  form.set("b", pending[1]);
  $("run-connects").disabled = true;
  $("job").hidden = false;
  try {
    let job = await api("POST", "/connect", form);
    while (job.state === "running") {
      const n = job.steps.length, bar = job.bar || {};
      const within = bar.total ? bar.done / bar.total : 0;
      $("job-bar").style.width = `${(((job.step + within) / n) * 100).toFixed(1)}%`;
      $("job-text").textContent = `step ${job.step + 1} of ${n}: ${job.steps[job.step].command}` +
        (bar.total ? ` · ${bar.desc} ${bar.done}/${bar.total}` : "") + ` · ${job.seconds} s`;
      await new Promise((r) => setTimeout(r, 700));
      job = await api("GET", `/jobs/${job.id}`);
    }
    if (job.state === "failed") throw new Error(job.error);
    $("job-bar").style.width = "100%";
    $("job-text").textContent = `done in ${job.seconds} s: ${job.path}`;
    await drawGraph();
    await search(lastQuery);
  } catch (e) {
    $("job-text").textContent = e.message;
    $("run-connects").disabled = false;
  }
}

// -- recording: the microphone's samples, written as a 16-bit WAV (what every decoder reads) --
let recorder = null;
async function toggleRecord() {
  const btn = $("record");
  if (recorder) { const r = recorder; recorder = null; btn.classList.remove("recording"); btn.textContent = "● Record a sound"; r.stop(); return; }
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); }
  catch (e) { status(`cannot record: ${e.message}`, true); return; }
  const ctx = new AudioContext();
  const source = ctx.createMediaStreamSource(stream);
  const node = ctx.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  node.onaudioprocess = (ev) => chunks.push(new Float32Array(ev.inputBuffer.getChannelData(0)));
  source.connect(node); node.connect(ctx.destination);
  btn.classList.add("recording"); btn.textContent = "■ Stop and search";
  recorder = { stop() {
    node.disconnect(); source.disconnect(); stream.getTracks().forEach((t) => t.stop());
    const wav = toWav(chunks, ctx.sampleRate); ctx.close();
    const file = new File([wav], "recording.wav", { type: "audio/wav" });
    queryFile(file);
  } };
}

function toWav(chunks, rate) {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const buf = new ArrayBuffer(44 + 2 * n), v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); str(8, "WAVE"); str(12, "fmt ");
  v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true); str(36, "data"); v.setUint32(40, 2 * n, true);
  let o = 44;
  for (const c of chunks) for (const s of c) { v.setInt16(o, Math.max(-1, Math.min(1, s)) * 0x7fff, true); o += 2; }
  return buf;
}

function queryFile(file) {
  preview(file);
  const form = new FormData();
  form.set("file", file, file.name || "query");
  search(form);
}

// -- the graph of spaces as SVG, from the server's layout --
async function drawGraph() {
  const g = await api("GET", "/graph");
  const nodes = g.picture.nodes;
  if (!nodes.length) { $("graph").textContent = "No spaces installed."; return; }
  const xs = nodes.map((n) => n.x), ys = nodes.map((n) => n.y);
  const minX = Math.min(...xs), maxX = Math.max(...xs), maxY = Math.max(...ys);
  const W = Math.max(640, (maxX - minX + 1.6) * 170), H = maxY * 95 + 90;
  const px = (x) => ((x - minX + 0.8) / (maxX - minX + 1.6)) * W, py = (y) => H - 45 - y * 95;
  const pos = {}; for (const n of nodes) pos[`${n.kind}:${n.name}`] = [px(n.x), py(n.y)];
  const spaces = Object.fromEntries(g.spaces.map((s) => [s.name, s]));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const add = (tag, attrs, text) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text) e.textContent = text; svg.append(e); return e; };
  const defs = add("defs", {});
  const marker = document.createElementNS(ns, "marker");
  for (const [k, v] of Object.entries({ id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" })) marker.setAttribute(k, v);
  const tip = document.createElementNS(ns, "path"); tip.setAttribute("d", "M 0 0 L 10 5 L 0 10 z"); tip.setAttribute("fill", "#fb8500");
  marker.append(tip); defs.append(marker);
  for (const [s, m] of g.picture.holds) {
    const [x0, y0] = pos[`space:${s}`], [x1, y1] = pos[`modality:${m}`];
    add("line", { x1: x0, y1: y0, x2: x1, y2: y1, stroke: "#b0b0b0", "stroke-width": 1.2 });
  }
  for (const [c, p] of g.picture.joins) {
    const [x0, y0] = pos[`space:${c}`], [x1, y1] = pos[`space:${p}`];
    add("line", { x1: x0, y1: y0 + 17, x2: x1, y2: y1 - 19, stroke: "#fb8500", "stroke-width": 1.6, "marker-end": "url(#arrow)" });
    add("text", { x: (x0 + x1) / 2 + 6, y: (y0 + y1) / 2, fill: "#b35c00", "font-size": 11 }, `via ${(spaces[c] || {}).via || "?"}`);
  }
  for (const n of nodes) {
    const [x, y] = pos[`${n.kind}:${n.name}`];
    const label = n.name;
    const w = Math.max(70, label.length * 7.2 + 22);
    if (n.kind === "modality") {
      add("rect", { x: x - w / 2, y: y - 15, width: w, height: 30, rx: 15, fill: "#eeeeee", stroke: "#888" });
    } else {
      const s = spaces[n.name] || {};
      const plugin = s.kind === "plugin", absent = s.weights_present === false;
      const box = add("rect", { x: x - w / 2, y: y - 17, width: w, height: 34, rx: plugin ? 4 : 12, fill: plugin ? (absent ? "#e6f2f7" : "#8ecae6") : "#ffb703", stroke: plugin ? "#219ebc" : "#fb8500" });
      if (absent) { box.setAttribute("stroke-dasharray", "4 3"); box.append(Object.assign(document.createElementNS(ns, "title"), { textContent: `${n.name}: weights missing (mcrgraph download ${n.name})` })); }
    }
    add("text", { x, y: y + 4, "text-anchor": "middle", fill: "#1d2733" }, label);
  }
  $("graph").innerHTML = "";
  $("graph").append(svg);
}

// -- wiring --
$("gallery").addEventListener("change", showAbout);
$("text-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("query-preview").innerHTML = "";
  const form = new FormData();
  form.set("text", text);
  search(form);
});
const drop = $("drop");
drop.addEventListener("click", () => $("file").click());
drop.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") $("file").click(); });
$("file").addEventListener("change", () => { if ($("file").files[0]) queryFile($("file").files[0]); });
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => { ev.preventDefault(); drop.classList.remove("over"); if (ev.dataTransfer.files[0]) queryFile(ev.dataTransfer.files[0]); });
$("record").addEventListener("click", toggleRecord);
$("run-connects").addEventListener("click", runConnects);
loadGalleries().catch((e) => status(e.message, true));
drawGraph().catch((e) => { $("graph").textContent = e.message; });
