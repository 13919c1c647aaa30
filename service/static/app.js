// The page: photos (chosen, dropped or pasted) and webcam frames go to POST /v1/detect with the options
// form as query parameters; the answer is drawn over the image. The anonymise button sends the photo to
// POST /v1/anonymize and offers the covered image for download.

import { ApiError, anonymize, detect, probeMesh } from "./api.js";
import { LANDMARKS, drawResult, showCrops, showFaceDetails } from "./draw.js";
import { describeError } from "./messages.js";
import { Webcam, webcamUnavailableReason } from "./webcam.js";

const byId = (id) => document.getElementById(id);
const form = byId("options");
// The options (checkboxes, and the landmarks select's "mesh") that need the server's mesh model.
const meshFields = [...form.querySelectorAll(".needs-mesh")];
const keyField = byId("api-key");
const webcamButton = byId("webcam");
const webcam = new Webcam();

const TIMING_LABELS = { decode: "decode", queue: "queue", inference: "inference", postprocess: "post-processing", mesh: "mesh" };
const PROBE_RETRY_S = 2;
const RATE_WINDOW = 10;

// The key lives in this variable only: never in storage, a cookie or the URL.
let apiKey = "";
// The last photo chosen, dropped or pasted; sent again when an option or the key changes.
let photo = null;
// Answers to requests that a newer one has superseded are dropped.
let latestRequest = 0;
let meshKnown = false;
let meshRetry = null;
let webcamFrames = 0;
// When the last few webcam answers arrived: the shown rate is the current one, not a start-up average.
let webcamAnswerTimes = [];

/** The options form as API parameters: each field is named as the query parameter it sets. */
function readOptions() {
  const options = {};
  for (const field of form.elements) {
    if (!field.name) {
      continue;
    }
    if (field.type === "checkbox") {
      options[field.name] = field.checked && !field.disabled;
    } else if (field.value !== "") {
      options[field.name] = field.value;
    }
  }
  return options;
}

/** Enable the mesh option only when the API itself says it can return one; otherwise show why not. */
async function checkMesh() {
  clearTimeout(meshRetry);
  try {
    const { available, reason } = await probeMesh(apiKey);
    meshKnown = true;
    enableMeshFields(available);
    byId("mesh-status").textContent = available ? "the server can return a dense mesh" : reason;
  } catch (error) {
    if (!(error instanceof ApiError)) {
      throw error;
    }
    meshKnown = false;
    enableMeshFields(false);
    const { headline } = describeError(error, apiKey !== "");
    byId("mesh-status").textContent = `mesh: not known yet (${headline.toLowerCase()})`;
    if (error.code === "unauthorized") {
      askForKey();
    } else if (error.status === 503) {
      meshRetry = setTimeout(checkMesh, (error.retryAfterSeconds ?? PROBE_RETRY_S) * 1000);
    }
  }
}

function enableMeshFields(available) {
  for (const field of meshFields) {
    field.disabled = !available;
    if (!available) {
      field.checked = false;
      field.selected = false;
    }
  }
  if (!available) {
    form.elements.landmarks.value = "detector";
  }
}

function askForKey() {
  keyField.classList.add("wanted");
  byId("key-status").textContent =
    apiKey === "" ? "this server needs an API key: enter it here" : "this key was not accepted";
}

function showProblem({ headline, detail, code }) {
  byId("error-title").textContent = headline;
  byId("error-detail").textContent = detail;
  byId("error-code").textContent = code;
  byId("error").hidden = false;
}

function showApiError(error) {
  if (error.code === "unauthorized") {
    askForKey();
    keyField.focus();
  }
  showProblem(describeError(error, apiKey !== ""));
}

function showImage(bitmap, result) {
  byId("drop-hint").hidden = true;
  const canvas = byId("view");
  canvas.hidden = false;
  drawResult(canvas, bitmap, result);
}

function showResult(bitmap, { result, roundTripMs }) {
  byId("error").hidden = true;
  showImage(bitmap, result);
  const count = byId("face-count");
  count.dataset.count = String(result.faces.length);
  const faces = `${result.faces.length} face${result.faces.length === 1 ? "" : "s"}`;
  count.textContent = `${faces} in ${result.width}×${result.height} (${result.model})`;
  // A stage the request did not run (the mesh without return_mesh) has no timing.
  const rows = Object.entries(result.timings_ms)
    .filter(([, ms]) => ms !== null)
    .map(([stage, ms]) => timingRow(TIMING_LABELS[stage] ?? stage, ms));
  rows.push(timingRow("round trip", roundTripMs));
  byId("timings").tBodies[0].replaceChildren(...rows);
  showCrops(byId("crops"), result.faces);
  showFaceDetails(byId("face-details"), result.faces);
}

function clearResult() {
  const count = byId("face-count");
  count.dataset.count = "";
  count.textContent = "no result";
  byId("timings").tBodies[0].replaceChildren();
  byId("crops").replaceChildren();
  byId("face-details").replaceChildren();
}

function timingRow(label, ms) {
  const row = document.createElement("tr");
  const name = document.createElement("th");
  name.textContent = label;
  const value = document.createElement("td");
  value.textContent = ms.toFixed(1);
  row.append(name, value);
  return row;
}

async function detectPhoto() {
  if (photo === null) {
    return;
  }
  const request = ++latestRequest;
  if (!meshKnown) {
    await checkMesh();
  }
  const [answer, decoded] = await Promise.allSettled([detect(photo, readOptions(), apiKey), createImageBitmap(photo)]);
  const bitmap = decoded.status === "fulfilled" ? decoded.value : null;
  try {
    if (request === latestRequest) {
      showPhotoAnswer(answer, decoded, bitmap);
    }
  } finally {
    // Drawn onto the canvas by now: free its pixels rather than wait for the garbage collector.
    bitmap?.close();
  }
}

function showPhotoAnswer(answer, decoded, bitmap) {
  if (answer.status === "fulfilled" && bitmap !== null) {
    showResult(bitmap, answer.value);
    return;
  }
  clearResult();
  if (bitmap !== null) {
    showImage(bitmap, null);
  } else {
    byId("view").hidden = true;
    byId("drop-hint").hidden = false;
  }
  if (answer.status === "rejected") {
    if (!(answer.reason instanceof ApiError)) {
      throw answer.reason;
    }
    showApiError(answer.reason);
  } else {
    showProblem({ headline: "This browser cannot display the image", detail: decoded.reason.message, code: "" });
  }
}

function usePhoto(file) {
  if (!file) {
    return;
  }
  stopWebcam();
  photo = file;
  byId("anonymize").disabled = false;
  byId("anonymized-download").hidden = true;
  detectPhoto();
}

/** The photo with its faces covered, shown and offered for download in the photo's own format. */
async function anonymizePhoto() {
  if (photo === null) {
    return;
  }
  const request = ++latestRequest;
  try {
    const covered = await anonymize(photo, byId("anonymize-mode").value, apiKey);
    if (request !== latestRequest) {
      return;
    }
    byId("error").hidden = true;
    const bitmap = await createImageBitmap(covered);
    showImage(bitmap, null);
    bitmap.close();
    const link = byId("anonymized-download");
    URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(covered);
    link.download = `anonymized-${photo.name || "photo"}`;
    link.dataset.bytes = String(covered.size);
    link.hidden = false;
  } catch (error) {
    if (!(error instanceof ApiError)) {
      throw error;
    }
    showApiError(error);
  }
}

/** One webcam frame: detect, draw; resolves to whether the webcam should go on. */
async function detectFrame(frame, bitmap) {
  const request = ++latestRequest;
  try {
    const answer = await detect(frame, readOptions(), apiKey);
    if (request === latestRequest) {
      showResult(bitmap, answer);
      webcamFrames += 1;
      webcamAnswerTimes = [...webcamAnswerTimes, performance.now()].slice(-RATE_WINDOW);
      const status = byId("webcam-status");
      status.dataset.frames = String(webcamFrames);
      status.textContent = `${webcamFrames} frames${frameRate(webcamAnswerTimes)}`;
    }
    return webcam.running;
  } catch (error) {
    if (!(error instanceof ApiError)) {
      throw error;
    }
    showApiError(error);
    if (error.code === "queue_full") {
      // The server asked to wait; the camera stays on.
      await new Promise((resolve) => setTimeout(resolve, (error.retryAfterSeconds ?? 1) * 1000));
      return webcam.running;
    }
    stopWebcam();
    return false;
  } finally {
    bitmap.close();
  }
}

function frameRate(times) {
  if (times.length < 2) {
    return "";
  }
  const perSecond = ((times.length - 1) * 1000) / (times.at(-1) - times[0]);
  return `, ${perSecond.toFixed(1)} per second`;
}

async function startWebcam() {
  photo = null;
  byId("anonymize").disabled = true;
  webcamFrames = 0;
  webcamAnswerTimes = [];
  webcamButton.textContent = "Stop webcam";
  try {
    await webcam.start(detectFrame, (error) => {
      stopWebcam();
      showProblem({ headline: "The webcam stopped", detail: error.message, code: "" });
    });
  } catch (error) {
    stopWebcam();
    showProblem({ headline: "The webcam could not be opened", detail: error.message, code: error.name });
  }
}

function stopWebcam() {
  webcam.stop();
  webcamButton.textContent = "Start webcam";
}

function setUp() {
  byId("legend").replaceChildren(
    ...LANDMARKS.map(({ name, colour }) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.backgroundColor = colour;
      item.append(swatch, name);
      return item;
    }),
  );

  byId("file").addEventListener("change", (event) => {
    usePhoto(event.target.files[0]);
    // Choosing the same file again is a new choice too.
    event.target.value = "";
  });
  document.addEventListener("paste", (event) => usePhoto(event.clipboardData?.files[0]));
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    usePhoto(event.dataTransfer?.files[0]);
  });

  // Webcam frames pick up the new options by themselves; a photo is sent again.
  form.addEventListener("change", () => detectPhoto());
  form.addEventListener("submit", (event) => event.preventDefault());
  byId("anonymize").addEventListener("click", () => anonymizePhoto());

  keyField.addEventListener("input", () => {
    apiKey = keyField.value;
  });
  byId("key-form").addEventListener("submit", (event) => event.preventDefault());
  keyField.addEventListener("change", async () => {
    keyField.classList.remove("wanted");
    byId("key-status").textContent = "kept in this page's memory only";
    await checkMesh();
    await detectPhoto();
  });

  const unavailable = webcamUnavailableReason();
  if (unavailable !== null) {
    webcamButton.disabled = true;
    byId("webcam-status").textContent = unavailable;
  }
  webcamButton.addEventListener("click", () => (webcam.running ? stopWebcam() : startWebcam()));

  checkMesh();
}

setUp();
