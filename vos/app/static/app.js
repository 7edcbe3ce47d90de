// vos app: the page. Everything it shows comes from the server's /api/state and its images; every change is a
// POST whose answer is the new state. Frames are fetched one at a time as the user goes to them.
"use strict";

const $ = (id) => document.getElementById(id);
const app = {
  state: null,
  frame: 0,
  images: { frame: null, masks: null },  // the drawn frame's pictures, once loaded
  drag: null,  // {x, y} in video pixels where a press started
  pointer: null,
  busy: false,
};
window.vosApp = app;  // for the browser tests and the curious

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = !message;
}
$("error-close").onclick = () => showError("");

async function call(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
  });
  const data = await response.json();
  if (!response.ok) {
    showError(data.error || response.statusText);
    await refresh();
    return false;
  }
  showError("");
  update(data);
  return true;
}

async function refresh() {
  const response = await fetch("/api/state");
  update(await response.json());
}

// ---------------------------------------------------------------- state -> page
function update(state) {
  const before = app.state;
  app.state = state;
  if (state.error && (!before || before.error !== state.error)) showError(state.error);
  const video = state.video;
  if (!before || before.opened !== state.opened) {
    // What the field holds is what the next Open uses: empty is the embedded model.
    $("checkpoint").value = state.checkpoint || "";
  }
  $("placeholder").hidden = !!video;
  if (video) {
    if (!before || !before.video || before.opened !== state.opened) {
      app.frame = Math.min(app.frame, video.frames - 1);
      $("scrub").max = video.frames - 1;
      $("video-path").value = video.path;
      const stem = video.path.replace(/\/+$/, "").split("/").pop().replace(/\.[^.]*$/, "");
      if (!$("export-folder").value) $("export-folder").value = `vos-out/${stem}-app`;
    }
    $("scrub").value = app.frame;
  }
  drawObjects();
  drawCandidates();
  drawJob();
  drawBar();
  loadFrame();
}

function drawObjects() {
  const list = $("objects");
  list.innerHTML = "";
  for (const obj of app.state.objects) {
    const li = document.createElement("li");
    li.dataset.id = obj.id;
    li.className = obj.id === app.state.selected ? "selected" : "";
    li.innerHTML = `<span class="swatch" style="background:${obj.colour}"></span><b>#${obj.id}</b>` +
      `<span class="count">${obj.prompts} prompt${obj.prompts === 1 ? "" : "s"}</span>` +
      `<button class="remove" title="Remove object #${obj.id}">×</button>`;
    li.onclick = (e) => {
      if (e.target.classList.contains("remove")) call("/api/remove", { obj_id: obj.id });
      else call("/api/select", { obj_id: obj.id });
    };
    list.appendChild(li);
  }
}

function drawCandidates() {
  const box = $("candidates");
  const c = app.state.candidates;
  if (!c) {
    box.innerHTML = '<p class="hint">After a single click the model offers several masks; ' +
      "with more clicks or a box it gives one.</p>";
    return;
  }
  const key = `${app.state.opened}:${app.state.version}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.innerHTML = `<p class="hint">Object #${c.obj_id}, frame ${c.frame}: the model's masks and its predicted IoU. ` +
    "Pick another if it chose wrong.</p>";
  const grid = document.createElement("div");
  grid.className = "choices";
  c.ious.forEach((iou, k) => {
    const fig = document.createElement("figure");
    fig.className = k === c.chosen ? "chosen" : "";
    fig.dataset.index = k;
    fig.innerHTML = `<img alt="mask ${k + 1}" src="/api/candidate/${k}.jpg?v=${key}">` +
      `<figcaption>${k === c.chosen ? "✓ " : ""}IoU ${iou.toFixed(2)}</figcaption>`;
    fig.onclick = () => { app.frame = c.frame; call("/api/pick", { index: k }); };
    grid.appendChild(fig);
  });
  box.appendChild(grid);
}

function drawJob() {
  const job = app.state.job;
  const running = !!job && job.state === "running";
  $("track").disabled = running || !app.state.video;
  $("export").disabled = running || !app.state.video;
  $("cancel").disabled = !running;
  $("progress").max = job ? job.total : 1;
  $("progress").value = job ? job.done : 0;
  if (job) {
    const what = job.kind === "track" ? "Tracking" : "Exporting";
    $("job").textContent = running ? `${what}: ${job.done} / ${job.total} frames (${job.seconds} s)` : job.message;
    $("job").className = job.state === "failed" ? "hint bad" : "hint";
    if (job.state === "failed" && app.lastFailure !== job.message) {
      app.lastFailure = job.message;
      showError(job.message);
    }
  }
  clearTimeout(app.poll);
  app.poll = setTimeout(refresh, running ? 250 : 2000);
}

function inRuns(runs, i) {
  return runs.some(([a, b]) => a <= i && i <= b);
}

function drawBar() {
  const canvas = $("bar");
  const state = app.state;
  const width = canvas.clientWidth;
  canvas.width = width * devicePixelRatio;
  canvas.height = 22 * devicePixelRatio;
  const ctx = canvas.getContext("2d");
  ctx.scale(devicePixelRatio, devicePixelRatio);
  ctx.clearRect(0, 0, width, 22);
  if (!state.video) return;
  const n = state.video.frames;
  const cell = width / n;
  const fill = (runs, colour) => {
    ctx.fillStyle = colour;
    for (const [a, b] of runs) ctx.fillRect(a * cell, 6, (b - a + 1) * cell, 12);
  };
  fill(state.stale, "#5b6470");
  fill(state.tracked, "#3fb950");
  const colours = Object.fromEntries(state.objects.map((o) => [o.id, o.colour]));
  for (const p of state.prompts) {
    ctx.fillStyle = colours[p.obj_id] || "#f0b429";
    ctx.fillRect(p.frame * cell, 0, Math.max(cell, 3), 5);
  }
  ctx.fillStyle = "#fff";
  ctx.fillRect(app.frame * cell + cell / 2 - 1, 0, 2, 22);
}

// ---------------------------------------------------------------- the frame
function fit() {
  // Where the frame is drawn on the stage: scaled to fit, centred (the margins are outside the frame).
  const stage = $("stage");
  const video = app.state.video;
  const scale = Math.min(stage.clientWidth / video.width, stage.clientHeight / video.height);
  return { scale, x: (stage.clientWidth - video.width * scale) / 2, y: (stage.clientHeight - video.height * scale) / 2 };
}

app.videoToStage = (x, y) => { const f = fit(); return { x: f.x + x * f.scale, y: f.y + y * f.scale }; };
app.stageToVideo = (x, y) => { const f = fit(); return { x: (x - f.x) / f.scale, y: (y - f.y) / f.scale }; };

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`cannot load ${url}`));
    image.src = url;
  });
}

async function loadFrame() {
  const state = app.state;
  if (!state.video) { draw(); return; }
  const i = app.frame;
  const frameUrl = `/api/frame/${i}.jpg?o=${state.opened}`;
  const masksUrl = `/api/masks/${i}.png?o=${state.opened}&v=${state.version}&s=${state.selected}`;
  if (app.images.frameUrl === frameUrl && app.images.masksUrl === masksUrl) { draw(); return; }
  try {
    const [frame, masks] = await Promise.all([loadImage(frameUrl), loadImage(masksUrl)]);
    if (i !== app.frame) return;  // the user has moved on
    app.images = { frame, masks, frameUrl, masksUrl, index: i };
    draw();
  } catch (error) {
    if (i === app.frame) showError(error.message);
  }
}

function draw() {
  const canvas = $("canvas");
  const stage = $("stage");
  canvas.width = stage.clientWidth * devicePixelRatio;
  canvas.height = stage.clientHeight * devicePixelRatio;
  const ctx = canvas.getContext("2d");
  ctx.scale(devicePixelRatio, devicePixelRatio);
  const state = app.state;
  const video = state && state.video;
  $("frame-label").textContent = video ? `frame ${app.frame} / ${video.frames - 1}` : "–";
  if (!video || !app.images.frame) return;
  const f = fit();
  const w = video.width * f.scale;
  const h = video.height * f.scale;
  ctx.drawImage(app.images.frame, f.x, f.y, w, h);
  ctx.drawImage(app.images.masks, f.x, f.y, w, h);
  const colours = Object.fromEntries(state.objects.map((o) => [o.id, o.colour]));
  for (const p of state.prompts) {
    if (p.frame !== app.frame) continue;
    if (p.box) {
      const [x1, y1, x2, y2] = p.box;
      ctx.strokeStyle = colours[p.obj_id] || "#fff";
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.strokeRect(f.x + x1 * f.scale, f.y + y1 * f.scale, (x2 - x1) * f.scale, (y2 - y1) * f.scale);
      ctx.setLineDash([]);
    }
    (p.points || []).forEach(([x, y], k) => marker(ctx, f.x + x * f.scale, f.y + y * f.scale, p.labels[k] === 1));
  }
  if (app.drag && app.pointer) {
    const a = app.videoToStage(app.drag.x, app.drag.y);
    const b = app.videoToStage(app.pointer.x, app.pointer.y);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1.5;
    ctx.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
  }
}

function marker(ctx, x, y, positive) {
  ctx.beginPath();
  ctx.arc(x, y, 7, 0, 2 * Math.PI);
  ctx.fillStyle = positive ? "#3fb950" : "#f85149";
  ctx.fill();
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#fff";
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x - 3.5, y);
  ctx.lineTo(x + 3.5, y);
  if (positive) { ctx.moveTo(x, y - 3.5); ctx.lineTo(x, y + 3.5); }
  ctx.stroke();
}

function goTo(i) {
  const video = app.state && app.state.video;
  if (!video) return;
  app.frame = Math.max(0, Math.min(video.frames - 1, i));
  $("scrub").value = app.frame;
  drawBar();
  loadFrame();
}

// ---------------------------------------------------------------- input
async function needObject() {
  if (app.state.selected !== null && app.state.selected !== undefined) return app.state.selected;
  await call("/api/object");
  return app.state.selected;
}

function pointerVideo(event) {
  const rect = $("stage").getBoundingClientRect();
  return app.stageToVideo(event.clientX - rect.left, event.clientY - rect.top);
}

$("stage").addEventListener("contextmenu", (e) => e.preventDefault());
$("stage").addEventListener("pointerdown", (e) => {
  if (!app.state || !app.state.video || (e.button !== 0 && e.button !== 2)) return;
  app.drag = { ...pointerVideo(e), button: e.button };
  app.pointer = null;
  $("stage").setPointerCapture(e.pointerId);
});
$("stage").addEventListener("pointermove", (e) => {
  if (!app.drag) return;
  app.pointer = pointerVideo(e);
  draw();
});
$("stage").addEventListener("pointerup", async (e) => {
  const start = app.drag;
  if (!start) return;
  app.drag = null;
  const end = pointerVideo(e);
  const f = fit();
  const moved = Math.hypot(end.x - start.x, end.y - start.y) * f.scale;
  const obj = await needObject();
  if (moved > 6 && start.button === 0) {
    await call("/api/box", { frame: app.frame, obj_id: obj, x1: Math.min(start.x, end.x), y1: Math.min(start.y, end.y),
      x2: Math.max(start.x, end.x), y2: Math.max(start.y, end.y) });
  } else {
    const negative = start.button === 2 || document.querySelector("input[name=mode]:checked").value === "negative";
    await call("/api/click", { frame: app.frame, obj_id: obj, x: start.x, y: start.y, positive: !negative });
  }
});

$("scrub").addEventListener("input", (e) => goTo(Number(e.target.value)));
$("bar").addEventListener("pointerdown", (e) => {
  const rect = $("bar").getBoundingClientRect();
  if (app.state && app.state.video) goTo(Math.floor((e.clientX - rect.left) / rect.width * app.state.video.frames));
});
$("prev").onclick = () => goTo(app.frame - 1);
$("next").onclick = () => goTo(app.frame + 1);
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
  if (e.key === "ArrowLeft") goTo(app.frame - 1);
  if (e.key === "ArrowRight") goTo(app.frame + 1);
});
$("add-object").onclick = () => call("/api/object");
$("clear-frame").onclick = () => {
  if (app.state.selected) call("/api/clear", { frame: app.frame, obj_id: app.state.selected });
};
$("track").onclick = () => call("/api/track");
$("cancel").onclick = () => call("/api/cancel");
$("export").onclick = () => call("/api/export", {
  folder: $("export-folder").value, masks: $("export-masks").value,
  overlay: $("export-overlay").checked, overwrite: $("export-overwrite").checked,
});
$("open-form").addEventListener("submit", (e) => {
  e.preventDefault();
  call("/api/open", { video: $("video-path").value, checkpoint: $("checkpoint").value });
});
window.addEventListener("resize", () => { drawBar(); draw(); });
refresh();
