// The dist dashboard: polls the center's JSON API and redraws in place, without reloading.
// Everything shown that came from the cluster (keys, names) goes through textContent, never
// innerHTML: task keys are user data.
"use strict";

const POLL_MS = 500;
const RETRY_MS = 1000;
const STREAM_WINDOW_SECONDS = 10;
const STREAM_KEEP = 5000; // task-stream entries kept in the page, newest first to go last
const DRAW_MS = 100; // the task stream scrolls between polls
const LABEL_WIDTH = 150;
const AXIS_HEIGHT = 18;

const view = {
  cursor: 0,
  stream: [], // {prefix, key, worker, start, stop}, in the order the center saw them finish
  workers: [],
  clockOffset: 0, // center's wall clock minus ours, so the timeline ends at the center's "now"
  lastMessages: null, // [messages handled, when] for the rate
  drawnBoxes: [], // where each task was drawn, for the tooltip
  colors: new Map(),
};

function byId(id) {
  return document.getElementById(id);
}

function formatBytes(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 100 || unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

function formatSeconds(seconds) {
  if (seconds < 1e-3) return `${(seconds * 1e6).toFixed(0)} µs`;
  if (seconds < 1) return `${(seconds * 1e3).toFixed(1)} ms`;
  if (seconds < 120) return `${seconds.toFixed(2)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

// Distinct colours for the first function names seen, then hues from a hash of the name.
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
  "#ff9da7", "#9c755f", "#bab0ac"];

function colorFor(prefix) {
  let color = view.colors.get(prefix);
  if (color === undefined) {
    if (view.colors.size < PALETTE.length) {
      color = PALETTE[view.colors.size];
    } else {
      let hash = 0;
      for (const char of prefix) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
      color = `hsl(${hash % 360}, 62%, 48%)`;
    }
    view.colors.set(prefix, color);
  }
  return color;
}

function centerNow() {
  return Date.now() / 1000 + view.clockOffset;
}

async function fetchJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function setConnection(kind, text) {
  const badge = byId("connection");
  badge.className = `connection ${kind}`;
  badge.textContent = text;
}

// -- header -------------------------------------------------------------------------------------
function renderStatus(status) {
  byId("center-address").textContent = `center ${status.address} · v${status.version}`;
  byId("summary-workers").textContent = status.workers;
  byId("summary-threads").textContent = status.threads;
  byId("summary-memory").textContent = status.memory_limit
    ? `${formatBytes(status.memory)} / ${formatBytes(status.memory_limit)}`
    : formatBytes(status.memory);
  const tasks = status.tasks;
  byId("summary-processing").textContent = tasks.processing;
  // Tasks sent ahead of their inputs wait on their worker: waiting, not processing.
  byId("summary-waiting").textContent = tasks.waiting + tasks.queued + tasks["no-worker"]
    + (tasks.ahead || 0);
  byId("summary-in-memory").textContent = tasks.memory;
  byId("summary-erred").textContent = status.erred;
  byId("summary-uptime").textContent = formatSeconds(status.uptime);
  const now = performance.now() / 1000;
  if (view.lastMessages !== null && now > view.lastMessages[1]) {
    const rate = (status.messages_handled - view.lastMessages[0]) / (now - view.lastMessages[1]);
    byId("summary-message-rate").textContent = Math.max(0, rate).toFixed(0);
  }
  view.lastMessages = [status.messages_handled, now];
}

// -- workers table ------------------------------------------------------------------------------
const WORKER_COLUMNS = ["name", "address", "nthreads", "memory", "cpu", "executing",
  "processing", "ahead", "keys", "nbytes", "status", "python"];
const NUMBER_COLUMNS = new Set(["nthreads", "cpu", "executing", "processing", "ahead", "keys",
  "nbytes"]);

function newWorkerRow(address) {
  const row = document.createElement("tr");
  row.dataset.address = address;
  for (const column of WORKER_COLUMNS) {
    const cell = document.createElement("td");
    cell.dataset.column = column;
    if (NUMBER_COLUMNS.has(column)) cell.className = "number";
    if (column === "memory") {
      const meter = document.createElement("div");
      meter.className = "meter";
      const track = document.createElement("div");
      track.className = "meter-track";
      // One bar per worker, as dask's memory view: results in memory, the rest of the
      // process, and (greyed) results spilled to disk, against the memory limit.
      for (const part of ["managed", "unmanaged", "spilled"]) {
        const segment = document.createElement("div");
        segment.className = `meter-fill meter-${part}`;
        track.append(segment);
      }
      const label = document.createElement("span");
      meter.append(track, label);
      cell.append(meter);
    }
    row.append(cell);
  }
  return row;
}

function fillMemoryMeter(cell, worker) {
  const track = cell.querySelector(".meter-track");
  const label = cell.querySelector("span");
  const managed = Math.min(worker.managed, worker.memory);
  const parts = { managed, unmanaged: Math.max(0, worker.memory - managed),
                  spilled: worker.spilled };
  const limit = worker.memory_limit;
  const scale = Math.max(limit, worker.memory + worker.spilled, 1);
  for (const [part, bytes] of Object.entries(parts)) {
    track.querySelector(`.meter-${part}`).style.width = `${(100 * bytes) / scale}%`;
  }
  track.hidden = limit <= 0 && worker.spilled <= 0;
  const spilled = worker.spilled > 0 ? ` + ${formatBytes(worker.spilled)} spilled` : "";
  label.textContent = limit > 0
    ? `${formatBytes(worker.memory)} / ${formatBytes(limit)}${spilled}`
    : `${formatBytes(worker.memory)}${spilled}`;
  cell.title = `managed ${formatBytes(parts.managed)}, unmanaged ${formatBytes(parts.unmanaged)}`
    + `, spilled ${formatBytes(worker.spilled)} (${formatBytes(worker.spilled_disk)} on disk)`
    + `; since it started, ${formatBytes(worker.spill_written || 0)} written to spill files`
    + ` and ${formatBytes(worker.spill_read || 0)} read back`
    + (limit > 0 ? `, limit ${formatBytes(limit)}` : "");
  track.classList.toggle("high", limit > 0 && worker.memory > 0.8 * limit);
}

function fillWorkerRow(row, worker) {
  const cells = Object.fromEntries([...row.children].map((cell) => [cell.dataset.column, cell]));
  cells.name.textContent = worker.name;
  cells.address.textContent = worker.address;
  cells.nthreads.textContent = worker.nthreads;
  fillMemoryMeter(cells.memory, worker);
  cells.cpu.textContent = `${worker.cpu.toFixed(0)} %`;
  cells.executing.textContent = worker.executing;
  cells.processing.textContent = worker.processing;
  cells.ahead.textContent = worker.ahead || 0;
  cells.keys.textContent = worker.keys;
  cells.nbytes.textContent = formatBytes(worker.nbytes);
  // A disk that takes no values pauses the worker at the spill threshold: say why.
  cells.status.textContent = worker.cannot_spill
    ? `${worker.status}, cannot spill: ${worker.cannot_spill}` : worker.status;
  // The Python version in the cell, every package version in its tooltip: a worker on another
  // Python or dist release is what to look for when tasks fail on some workers only.
  cells.python.textContent = worker.python || "?";
  cells.python.title = Object.entries(worker.packages || {})
    .map(([name, version]) => `${name} ${version}`).join("\n");
  row.classList.toggle("paused", worker.status === "paused");
}

function renderWorkers(workers) {
  view.workers = workers;
  const body = document.querySelector("#workers tbody");
  const existing = new Map([...body.children].map((row) => [row.dataset.address, row]));
  for (const worker of workers) {
    const row = existing.get(worker.address) || newWorkerRow(worker.address);
    existing.delete(worker.address);
    fillWorkerRow(row, worker);
    body.append(row); // moves an existing row into the sorted position
  }
  for (const gone of existing.values()) gone.remove();
  byId("worker-count").textContent = `(${workers.length})`;
  byId("no-workers").hidden = workers.length > 0;
}

// -- progress bars ------------------------------------------------------------------------------
function newProgressRow(prefix) {
  const row = document.createElement("div");
  row.className = "progress-row";
  row.dataset.prefix = prefix;
  const name = document.createElement("span");
  name.className = "progress-name";
  name.textContent = prefix;
  name.title = prefix;
  const bar = document.createElement("div");
  bar.className = "progress-bar";
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", `progress of ${prefix}`);
  bar.setAttribute("aria-valuemin", "0");
  bar.dataset.prefix = prefix;
  for (const kind of ["done", "erred", "processing"]) {
    const segment = document.createElement("div");
    segment.className = `segment ${kind}`;
    bar.append(segment);
  }
  const counts = document.createElement("span");
  counts.className = "progress-counts";
  row.append(name, bar, counts);
  return row;
}

function renderProgress(progress) {
  const box = byId("progress");
  const existing = new Map([...box.children].map((row) => [row.dataset.prefix, row]));
  for (const item of progress) {
    const row = existing.get(item.prefix) || newProgressRow(item.prefix);
    existing.delete(item.prefix);
    const bar = row.querySelector(".progress-bar");
    const total = Math.max(item.total, 1);
    bar.setAttribute("aria-valuemax", String(item.total));
    bar.setAttribute("aria-valuenow", String(item.done + item.erred));
    for (const kind of ["done", "erred", "processing"]) {
      bar.querySelector(`.segment.${kind}`).style.width = `${(100 * item[kind]) / total}%`;
    }
    const parts = [`${item.done} / ${item.total} done`];
    if (item.processing) parts.push(`${item.processing} running`);
    if (item.waiting) {
      parts.push(item.ahead ? `${item.waiting} waiting (${item.ahead} on workers, ahead)`
        : `${item.waiting} waiting`);
    }
    if (item.erred) parts.push(`${item.erred} erred`);
    if (item.memory) parts.push(`${item.memory} in memory`);
    row.querySelector(".progress-counts").textContent = parts.join(" · ");
    box.append(row);
  }
  for (const gone of existing.values()) gone.remove();
  byId("no-progress").hidden = progress.length > 0;
}

// -- task stream --------------------------------------------------------------------------------
function absorbStream(tasks) {
  const stream = tasks.stream;
  if (stream.cursor < view.cursor) view.stream = []; // a new center: start over
  view.cursor = stream.cursor;
  view.clockOffset = tasks.now - Date.now() / 1000;
  const [prefixAt, keyAt, workerAt, startAt, stopAt] = ["prefix", "key", "worker", "start",
    "stop"].map((name) => stream.columns.indexOf(name));
  for (const row of stream.rows) {
    view.stream.push({ prefix: row[prefixAt], key: row[keyAt], worker: row[workerAt],
      start: row[startAt], stop: row[stopAt] });
  }
  const oldest = tasks.now - STREAM_WINDOW_SECONDS;
  let keepFrom = Math.max(0, view.stream.length - STREAM_KEEP);
  while (keepFrom < view.stream.length && view.stream[keepFrom].stop < oldest) keepFrom += 1;
  if (keepFrom > 0) view.stream = view.stream.slice(keepFrom);
}

function laneGroups(windowStart) {
  // One group per worker (its threads are its lanes); workers that left keep a group while
  // their tasks are still in the window.
  const groups = new Map(view.workers.map((w) => [w.address,
    { address: w.address, name: w.name, lanes: Math.max(1, w.nthreads), tasks: [] }]));
  for (const task of view.stream) {
    if (task.stop < windowStart) continue;
    let group = groups.get(task.worker);
    if (group === undefined) {
      group = { address: task.worker, name: `${task.worker} (gone)`, lanes: 1, tasks: [] };
      groups.set(task.worker, group);
    }
    group.tasks.push(task);
  }
  return [...groups.values()];
}

function assignLanes(group) {
  // Greedy interval packing: each task takes the first lane free at its start.
  const laneEnds = new Array(group.lanes).fill(-Infinity);
  const placed = [];
  for (const task of [...group.tasks].sort((a, b) => a.start - b.start)) {
    let lane = laneEnds.findIndex((end) => end <= task.start + 1e-4);
    if (lane === -1) lane = laneEnds.indexOf(Math.min(...laneEnds));
    laneEnds[lane] = Math.max(laneEnds[lane], task.stop);
    placed.push([task, lane]);
  }
  return placed;
}

function drawStream() {
  const canvas = byId("task-stream");
  const now = centerNow();
  const windowStart = now - STREAM_WINDOW_SECONDS;
  const groups = laneGroups(windowStart);
  const totalLanes = groups.reduce((sum, group) => sum + group.lanes, 0) || 1;
  const laneHeight = totalLanes <= 8 ? 18 : Math.max(4, Math.floor(240 / totalLanes));
  const cssWidth = canvas.clientWidth || 600;
  const cssHeight = totalLanes * laneHeight + groups.length * 4 + AXIS_HEIGHT;
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(cssWidth * ratio) || canvas.height !== Math.round(cssHeight * ratio)) {
    canvas.width = Math.round(cssWidth * ratio);
    canvas.height = Math.round(cssHeight * ratio);
    canvas.style.height = `${cssHeight}px`;
  }
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, cssWidth, cssHeight);
  const plotWidth = Math.max(10, cssWidth - LABEL_WIDTH - 8);
  const xOf = (time) => LABEL_WIDTH + ((time - windowStart) / STREAM_WINDOW_SECONDS) * plotWidth;

  const boxes = [];
  const prefixesShown = new Set();
  let y = 0;
  context.font = "12px system-ui, sans-serif";
  context.textBaseline = "middle";
  for (const group of groups) {
    const groupHeight = group.lanes * laneHeight;
    context.fillStyle = "#f6f8fa";
    context.fillRect(LABEL_WIDTH, y, plotWidth, groupHeight);
    context.fillStyle = "#1f2328";
    context.fillText(group.name.slice(0, 22), 4, y + groupHeight / 2, LABEL_WIDTH - 8);
    for (const [task, lane] of assignLanes(group)) {
      const left = Math.max(LABEL_WIDTH, xOf(task.start));
      const right = Math.min(LABEL_WIDTH + plotWidth, xOf(task.stop));
      // A 1-pixel sliver still shows a fast task ran; wider ones keep a gap to the next task.
      const width = right - left > 3 ? right - left - 1 : Math.max(1, right - left);
      const top = y + lane * laneHeight + 1;
      context.fillStyle = colorFor(task.prefix);
      context.fillRect(left, top, width, laneHeight - 2);
      boxes.push({ left, top, width, height: laneHeight - 2, task });
      prefixesShown.add(task.prefix);
    }
    y += groupHeight + 4;
  }
  context.fillStyle = "#6a737d";
  context.textBaseline = "top";
  for (let secondsAgo = STREAM_WINDOW_SECONDS; secondsAgo >= 0; secondsAgo -= 2) {
    const x = xOf(now - secondsAgo);
    context.fillRect(x, y - 2, 1, 4);
    context.fillText(secondsAgo ? `-${secondsAgo} s` : "now", Math.min(x - 8, cssWidth - 28), y + 3);
  }
  view.drawnBoxes = boxes;
  renderLegend(prefixesShown);
}

function renderLegend(prefixes) {
  const legend = byId("stream-legend");
  const names = [...prefixes].sort();
  if (legend.dataset.names === names.join("\n")) return;
  legend.dataset.names = names.join("\n");
  legend.replaceChildren(...names.map((prefix) => {
    const item = document.createElement("span");
    item.className = "legend-item";
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colorFor(prefix);
    const label = document.createElement("span");
    label.textContent = prefix;
    item.append(swatch, label);
    return item;
  }));
}

function taskAt(event) {
  const bounds = byId("task-stream").getBoundingClientRect();
  const x = event.clientX - bounds.left;
  const y = event.clientY - bounds.top;
  const hit = view.drawnBoxes.find((box) => x >= box.left && x <= box.left + box.width
    && y >= box.top && y <= box.top + box.height);
  return { hit, x, y, bounds };
}

function openKeyPage(event) {
  const { hit } = taskAt(event);
  if (hit !== undefined) {
    window.location.href = `/key?key=${encodeURIComponent(hit.task.key)}`;
  }
}

function showTooltip(event) {
  const tooltip = byId("stream-tooltip");
  const { hit, x, y, bounds } = taskAt(event);
  if (hit === undefined) {
    tooltip.hidden = true;
    return;
  }
  const task = hit.task;
  tooltip.textContent = `${task.key}\n${task.worker}\nran ${formatSeconds(task.stop - task.start)}`
    + "\n(click: its story)";
  tooltip.style.left = `${Math.min(x + 12, bounds.width - 220)}px`;
  tooltip.style.top = `${y + 12}px`;
  tooltip.hidden = false;
}

// -- the loop -----------------------------------------------------------------------------------
async function poll() {
  try {
    const [status, workers, tasks] = await Promise.all([
      fetchJson("/api/status"),
      fetchJson("/api/workers"),
      fetchJson(`/api/tasks?since=${view.cursor}`),
    ]);
    renderStatus(status);
    renderWorkers(workers.workers);
    absorbStream(tasks);
    renderProgress(tasks.progress);
    setConnection("live", "live");
    setTimeout(poll, POLL_MS);
  } catch (error) {
    setConnection("lost", "center unreachable, retrying…");
    console.warn(error);
    setTimeout(poll, RETRY_MS);
  }
}

function start() {
  byId("stream-window").textContent = STREAM_WINDOW_SECONDS;
  const canvas = byId("task-stream");
  canvas.addEventListener("mousemove", showTooltip);
  canvas.addEventListener("click", openKeyPage);
  canvas.addEventListener("mouseleave", () => { byId("stream-tooltip").hidden = true; });
  setInterval(drawStream, DRAW_MS);
  poll();
}

start();
