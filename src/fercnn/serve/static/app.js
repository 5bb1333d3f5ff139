// The page: a photo (chosen or dropped) or camera frames go to POST /v1/recognize; the boxes,
// labels and seven probabilities come back and are drawn over the picture on a canvas, and
// listed below it. Plain JavaScript, no libraries: the server must work offline.
"use strict";

const EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
// the colours of fercnn's annotated images (recognition/annotate.py), as RGB
const COLORS = {
  angry: "rgb(220,40,40)", disgust: "rgb(40,140,40)", fear: "rgb(150,60,150)",
  happy: "rgb(255,200,0)", sad: "rgb(40,120,200)", surprise: "rgb(255,140,0)",
  neutral: "rgb(160,160,160)",
};
const MAX_SIDE = 1600; // the canvas's longest side: a 48 MP photo would not fit a phone's memory
const CAMERA_SIDE = 640; // frames sent from the camera: enough for faces, quick to send
const CAMERA_PERIOD_MS = 300; // a few frames a second, never more than one request at a time

const $ = (id) => document.getElementById(id);
const view = $("view");
const ctx = view.getContext("2d");
let camera = null; // {stream, timer} while the camera runs
let lastPhoto = null; // recognised again when the model, TTA or prior changes

function percent(p) {
  return `${Math.round(p * 100)}%`;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function query() {
  const params = new URLSearchParams();
  if ($("model").value) params.set("model", $("model").value);
  if ($("tta").checked) params.set("tta", "ten");
  if ($("prior").checked) params.set("prior", "photos");
  return params.toString();
}

async function recognize(blob, filename) {
  const form = new FormData();
  form.append("file", blob, filename);
  const response = await fetch(`/v1/recognize?${query()}`, { method: "POST", body: form });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) {
    const error = new Error(body.error || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// ---- drawing -------------------------------------------------------------------------------

function fitCanvas(width, height) {
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  view.width = Math.round(width * scale);
  view.height = Math.round(height * scale);
  view.hidden = false;
  $("hint").hidden = true;
}

function drawLabel(face, x, y, unit) {
  const text = `${face.emotion} ${percent(face.probabilities[face.emotion])}`;
  ctx.font = `bold ${Math.round(14 * unit)}px system-ui, sans-serif`;
  const height = Math.round(20 * unit);
  const width = ctx.measureText(text).width + 8 * unit;
  const top = y - height >= 0 ? y - height : y;
  ctx.fillStyle = COLORS[face.emotion] || "#fff";
  ctx.fillRect(x, top, width, height);
  ctx.fillStyle = "#000";
  ctx.fillText(text, x + 4 * unit, top + height - 6 * unit);
}

function drawPanel(face, x, y, w, h, unit) {
  // seven bars beside the face: right if there is room, else left, else below
  const row = Math.round(14 * unit);
  const pw = Math.round(150 * unit);
  const ph = row * EMOTIONS.length + 4 * unit;
  let px = x + w + 4 * unit;
  if (px + pw > view.width) px = x - pw - 4 * unit;
  let py = Math.min(Math.max(0, y), view.height - ph);
  if (px < 0) {
    px = Math.min(Math.max(0, x), view.width - pw);
    py = y + h + 4 * unit;
    if (py + ph > view.height) return; // no room: the list below the picture has them
  }
  ctx.fillStyle = "rgba(0,0,0,0.6)";
  ctx.fillRect(px, py, pw, ph);
  ctx.font = `${Math.round(11 * unit)}px system-ui, sans-serif`;
  EMOTIONS.forEach((emotion, i) => {
    const p = face.probabilities[emotion] || 0;
    const top = py + 2 * unit + i * row;
    ctx.fillStyle = "#fff";
    ctx.fillText(emotion, px + 4 * unit, top + row - 3 * unit);
    ctx.fillStyle = COLORS[emotion];
    ctx.fillRect(px + 58 * unit, top + 2 * unit, 56 * unit * p, row - 4 * unit);
    ctx.fillStyle = "#fff";
    ctx.fillText(percent(p), px + 118 * unit, top + row - 3 * unit);
  });
}

function draw(source, result) {
  ctx.drawImage(source, 0, 0, view.width, view.height);
  const scale = view.width / result.width; // boxes are in the image's own pixels
  const unit = Math.max(1, Math.max(view.width, view.height) / 800);
  for (const face of result.faces) {
    const [x, y, w, h] = face.box.map((v) => v * scale);
    ctx.lineWidth = Math.max(2, 2 * unit);
    ctx.strokeStyle = COLORS[face.emotion] || "#fff";
    ctx.strokeRect(x, y, w, h);
    if (result.faces.length <= 6) drawPanel(face, x, y, w, h, unit);
    drawLabel(face, x, y, unit);
  }
}

function listFaces(result) {
  const list = $("faces");
  list.replaceChildren();
  result.faces.forEach((face, i) => {
    const item = document.createElement("li");
    const title = document.createElement("h2");
    title.textContent = `Face ${i + 1}: ${face.emotion} ${percent(face.probabilities[face.emotion])}`;
    item.append(title);
    for (const emotion of EMOTIONS) {
      const p = face.probabilities[emotion] || 0;
      const bar = document.createElement("div");
      bar.className = "bar";
      const name = document.createElement("span");
      name.textContent = emotion;
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.display = "block";
      fill.style.width = percent(p);
      fill.style.background = COLORS[emotion];
      track.append(fill);
      const value = document.createElement("span");
      value.textContent = percent(p);
      bar.append(name, track, value);
      item.append(bar);
    }
    list.append(item);
  });
}

function summary(result) {
  const n = result.faces.length;
  const faces = n === 0 ? "no face found" : n === 1 ? "1 face" : `${n} faces`;
  const views = result.tta === "ten" ? " with ten-view TTA" : "";
  const mix = result.prior === "photos" ? ", read for photos' mix" : "";
  return `${faces}; model ${result.model}${views}${mix}, ` +
    `${Math.round(result.timing_ms.total)} ms on the server`;
}

// ---- a photo -------------------------------------------------------------------------------

async function showPhoto(file) {
  if (!file) return;
  stopCamera();
  lastPhoto = file;
  setStatus(`Recognising ${file.name}…`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    bitmap = null; // a format this browser cannot show: the server may still read it
  }
  try {
    const result = await recognize(file, file.name);
    fitCanvas(result.width, result.height);
    if (bitmap) draw(bitmap, result);
    listFaces(result);
    setStatus(summary(result));
  } catch (error) {
    setStatus(`${file.name}: ${error.message}`, true);
  }
}

// ---- the camera ----------------------------------------------------------------------------

function frameBlob(video) {
  const scale = Math.min(1, CAMERA_SIDE / Math.max(video.videoWidth, video.videoHeight));
  const frame = document.createElement("canvas");
  frame.width = Math.round(video.videoWidth * scale);
  frame.height = Math.round(video.videoHeight * scale);
  frame.getContext("2d").drawImage(video, 0, 0, frame.width, frame.height);
  return new Promise((resolve) => frame.toBlob((blob) => resolve({ blob, frame }),
    "image/jpeg", 0.85));
}

async function cameraStep() {
  if (!camera) return;
  const started = performance.now();
  const video = $("video");
  try {
    const { blob, frame } = await frameBlob(video);
    const result = await recognize(blob, "camera.jpg");
    if (!camera) return;
    if (view.width !== frame.width || view.height !== frame.height) {
      fitCanvas(frame.width, frame.height);
    }
    draw(frame, result);
    listFaces(result);
    setStatus(`Camera: ${summary(result)}`);
  } catch (error) {
    setStatus(`Camera: ${error.message}`, error.status !== 503);
  }
  if (camera) {
    const wait = Math.max(0, CAMERA_PERIOD_MS - (performance.now() - started));
    camera.timer = setTimeout(cameraStep, wait);
  }
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("This browser gives no camera here: it needs https:// or localhost.", true);
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 1280 } }, audio: false });
    const video = $("video");
    video.srcObject = stream;
    await video.play();
    camera = { stream, timer: null };
    $("camera").textContent = "Stop camera";
    $("camera").classList.add("on");
    cameraStep();
  } catch (error) {
    setStatus(`Camera: ${error.message}`, true);
  }
}

function stopCamera() {
  if (!camera) return;
  clearTimeout(camera.timer);
  camera.stream.getTracks().forEach((track) => track.stop());
  camera = null;
  $("camera").textContent = "Start camera";
  $("camera").classList.remove("on");
}

// ---- set-up --------------------------------------------------------------------------------

async function loadModels() {
  try {
    const response = await fetch("/v1/models");
    const body = await response.json();
    const select = $("model");
    for (const model of body.models) {
      const option = document.createElement("option");
      option.value = model.name;
      const accuracy = model.private_test_accuracy;
      option.textContent = accuracy ? `${model.name} (${(accuracy * 100).toFixed(1)}%)`
        : model.name;
      option.selected = model.name === body.default;
      select.append(option);
    }
  } catch (error) {
    setStatus(`Could not list the models: ${error.message}`, true);
  }
}

function setUp() {
  $("photo").addEventListener("change", (event) => showPhoto(event.target.files[0]));
  $("camera").addEventListener("click", () => (camera ? stopCamera() : startCamera()));
  for (const id of ["model", "tta", "prior"]) {
    $(id).addEventListener("change", () => { if (!camera && lastPhoto) showPhoto(lastPhoto); });
  }
  const stage = $("stage");
  stage.addEventListener("dragover", (event) => {
    event.preventDefault();
    stage.classList.add("dragging");
  });
  stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
  stage.addEventListener("drop", (event) => {
    event.preventDefault();
    stage.classList.remove("dragging");
    showPhoto(event.dataTransfer.files[0]);
  });
  loadModels();
}

setUp();
