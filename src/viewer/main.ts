/**
 * The medsynth viewer page (served on the web port at /viewer): opens a
 * series from disk, translates it slice by slice with unary TranslateSlice
 * calls over the Connect protocol (a few at a time, the visible slice and its
 * neighbours first), and shows original | synthetic | difference with
 * niivue. With a reference series each slice gets the service's PSNR, SSIM,
 * UQI, VIF and MAE. Everything is bundled (no CDN): it works offline.
 * NOT FOR CLINICAL USE.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { Niivue, NVImage } from "@niivue/niivue";
import { Direction, Encoding, SliceSchema, StreamOptionsSchema, Translator, type ModelInfo, type Quality } from "../gen/medsynth/v1/translator_pb.js";
import { readSeries, SeriesError, type Series } from "./series.js";

/** Requests in flight at once: enough to keep a batch forming, few enough that the visible slice is never far behind. */
const IN_FLIGHT = 3;
const METRICS = ["psnr", "ssim", "uqi", "vif", "mae"] as const;
const DIGITS: Record<(typeof METRICS)[number], number> = { psnr: 2, ssim: 4, uqi: 4, vif: 4, mae: 1 };
/** Window (centre, width) presets; MR is windowed on its own percentiles. */
const CT_WINDOWS: Record<string, [number, number]> = { brain: [40, 80], subdural: [75, 215], "soft tissue": [40, 400], bone: [600, 2800] };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let token = "";
const withToken: Interceptor = (next) => (request) => {
  if (token) request.header.set("authorization", `Bearer ${token}`);
  return next(request);
};
const client = createClient(Translator, createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [withToken] }));

type SliceState = { state: "waiting" } | { state: "sent"; abort: AbortController } | { state: "done"; quality?: Quality; ms: number } | { state: "failed"; code: string; message: string };

interface Job {
  source: Series;
  reference?: Series;
  direction: Direction;
  model: string;
  synthetic: Float32Array;
  slices: SliceState[];
}

let job: Job | undefined;
let visible = 0;
let models: ModelInfo[] = [];

/** One niivue per panel, each showing one volume (the original also the synthetic as an overlay). */
const panels = {
  original: new Niivue({ backColor: [0, 0, 0, 1], crosshairWidth: 0, show3Dcrosshair: false, isColorbar: false }),
  synthetic: new Niivue({ backColor: [0, 0, 0, 1], crosshairWidth: 0, show3Dcrosshair: false, isColorbar: false }),
  difference: new Niivue({ backColor: [0, 0, 0, 1], crosshairWidth: 0, show3Dcrosshair: false, isColorbar: false }),
};

/** A NIfTI-1 float32 volume of `values` (first row at the top, 1 mm voxels), for niivue. */
function nifti(values: Float32Array, width: number, height: number, depth: number): ArrayBuffer {
  const buffer = new ArrayBuffer(352 + values.byteLength);
  const view = new DataView(buffer);
  view.setInt32(0, 348, true);
  [3, width, height, depth, 1, 1, 1, 1].forEach((n, i) => view.setInt16(40 + 2 * i, n, true));
  view.setInt16(70, 16, true); // float32
  view.setInt16(72, 32, true);
  [1, 1, 1, 1, 1, 1, 1, 1].forEach((n, i) => view.setFloat32(76 + 4 * i, n, true));
  view.setFloat32(108, 352, true);
  view.setFloat32(112, 1, true);
  view.setInt16(254, 1, true); // sform: scanner
  // Row j shown from the top: y runs down the rows.
  [[1, 0, 0, 0], [0, -1, 0, height - 1], [0, 0, 1, 0]].forEach((row, r) => row.forEach((n, c) => view.setFloat32(280 + 16 * r + 4 * c, n, true)));
  new Uint8Array(buffer, 344, 4).set([0x6e, 0x2b, 0x31, 0]);
  new Float32Array(buffer, 352).set(values);
  return buffer;
}

async function volume(name: string, values: Float32Array, series: Series, colormap: string, [low, high]: [number, number], opacity = 1): Promise<NVImage> {
  return NVImage.loadFromUrl({
    url: `${name}.nii`,
    buffer: nifti(values, series.width, series.height, series.names.length),
    name,
    colormap,
    opacity,
    cal_min: low,
    cal_max: high,
    trustCalMinMax: true,
  });
}

/** The 1st and 99th percentiles of the finite values (MR display window). */
function percentiles(values: Float32Array): [number, number] {
  const finite = values.filter(Number.isFinite).sort();
  if (finite.length === 0) return [0, 1];
  return [finite[Math.floor(finite.length * 0.01)], finite[Math.floor(finite.length * 0.99)] + 1e-6];
}

function windowOf(modality: "ct" | "mr", values: Float32Array): [number, number] {
  if (modality === "mr") return percentiles(values);
  const [centre, width] = CT_WINDOWS[$<HTMLSelectElement>("ct-window").value] ?? CT_WINDOWS.brain;
  return [centre - width / 2, centre + width / 2];
}

const modalities = (direction: Direction) => (direction === Direction.MR_TO_CT ? { source: "mr", target: "ct" } as const : { source: "ct", target: "mr" } as const);

async function showVolumes(): Promise<void> {
  if (!job) return;
  const { source, reference, synthetic } = job;
  const { source: from, target: to } = modalities(job.direction);
  const difference = new Float32Array(synthetic.length).fill(Number.NaN);
  for (const nv of Object.values(panels)) while (nv.volumes.length > 0) nv.removeVolume(nv.volumes[0]);
  const targetWindow = windowOf(to, reference?.values ?? synthetic);
  panels.original.addVolume(await volume("original", source.values, source, "gray", windowOf(from, source.values)));
  panels.original.addVolume(await volume("overlay", synthetic, source, "warm", targetWindow, Number($<HTMLInputElement>("opacity").value)));
  panels.synthetic.addVolume(await volume("synthetic", synthetic, source, "gray", targetWindow));
  const span = to === "ct" ? 200 : (targetWindow[1] - targetWindow[0]) / 4;
  panels.difference.addVolume(await volume("difference", difference, source, "gray", [-span, span]));
  $("caption-original").textContent = `Original ${from.toUpperCase()}`;
  $("caption-synthetic").textContent = `Synthetic ${to.toUpperCase()} (${job.model})`;
  $("caption-difference").textContent = reference ? `Difference: synthetic − reference (±${Math.round(span)}${to === "ct" ? " HU" : ""})` : "Difference: open a reference series";
  showSlice(visible);
}

/** Copies slice k of the synthetic volume (and its difference from the reference) into the panels' volumes. */
function refreshSlice(k: number): void {
  if (!job) return;
  const size = job.source.width * job.source.height;
  const synthetic = job.synthetic.subarray(k * size, (k + 1) * size);
  const [overlay] = panels.original.volumes.slice(1);
  for (const image of [overlay, panels.synthetic.volumes[0]]) (image?.img as Float32Array | undefined)?.set(synthetic, k * size);
  const difference = panels.difference.volumes[0]?.img as Float32Array | undefined;
  if (difference && job.reference) {
    const reference = job.reference.values.subarray(k * size, (k + 1) * size);
    for (let i = 0; i < size; i++) difference[k * size + i] = synthetic[i] - reference[i];
  }
  for (const nv of Object.values(panels)) nv.updateGLVolume();
}

function showSlice(k: number): void {
  if (!job) return;
  visible = Math.max(0, Math.min(job.slices.length - 1, k));
  $<HTMLInputElement>("slice").value = String(visible);
  $("slice-label").textContent = `${visible + 1} / ${job.slices.length} · ${job.source.names[visible]}`;
  const depth = job.slices.length;
  for (const nv of Object.values(panels)) {
    if (nv.volumes.length === 0) continue;
    nv.scene.crosshairPos = [0.5, 0.5, (visible + 0.5) / depth];
    nv.drawScene();
  }
  renderMetrics();
  pump();
}

const format = (value: number | undefined, digits: number) => (value === undefined ? "–" : value === Infinity ? "∞" : value.toFixed(digits));

function renderMetrics(): void {
  if (!job) return;
  const done = job.slices.filter((s): s is Extract<SliceState, { state: "done" }> => s.state === "done");
  const failed = job.slices.filter((s) => s.state === "failed").length;
  $("progress").textContent = `${done.length} of ${job.slices.length} slices translated${failed ? `, ${failed} failed` : ""}`;
  document.body.dataset.translated = String(done.length);
  document.body.dataset.failed = String(failed);

  const current = job.slices[visible];
  const quality = current.state === "done" ? current.quality : undefined;
  const means = METRICS.map((m) => {
    const values = done.map((s) => s.quality?.[m]).filter((v): v is number => v !== undefined && Number.isFinite(v));
    return values.length ? values.reduce((a, b) => a + b, 0) / values.length : undefined;
  });
  const rated = done.filter((s) => s.quality).length;
  $("metrics-current").innerHTML = `<th>Slice ${visible + 1}</th>${METRICS.map((m) => `<td>${format(quality?.[m], DIGITS[m])}</td>`).join("")}`;
  $("metrics-mean").innerHTML = `<th>Series mean (${rated})</th>${means.map((v, i) => `<td>${format(v, DIGITS[METRICS[i]])}</td>`).join("")}`;
  $("metrics-note").textContent = job.reference ? "" : "Open a reference series of the target modality to get PSNR, SSIM, UQI, VIF and MAE.";

  $("strip").innerHTML = job.slices
    .map((s, k) => `<span class="cell ${s.state}${k === visible ? " visible" : ""}" data-slice="${k}" title="${job!.source.names[k]}: ${s.state}"></span>`)
    .join("");
  const rows = job.slices.map((s, k) => {
    if (s.state !== "done" || !s.quality) return "";
    const quality = s.quality;
    // A metric not defined for the slice (too small, a constant reference) is absent; the cell's title says why.
    const cells = METRICS.map((m) => {
      const value = quality[m];
      const why = value === undefined ? ` title="${escapeHtml(quality.unavailable[m] ?? "")}"` : "";
      return `<td data-metric="${m}" data-value="${value ?? ""}"${why}>${format(value, DIGITS[m])}</td>`;
    }).join("");
    return `<tr data-slice="${k}"${k === visible ? ' class="visible"' : ""}><th>${k + 1}</th><td class="name">${job!.source.names[k]}</td>${cells}</tr>`;
  });
  $("per-slice").innerHTML = rows.join("");
  const errors = job.slices.flatMap((s, k) => (s.state === "failed" ? [`<li data-slice="${k}"><b>${job!.source.names[k]}</b> ${s.code}: ${escapeHtml(s.message)}</li>`] : []));
  $("errors").innerHTML = errors.join("");
  $("errors-box").hidden = errors.length === 0;
}

const escapeHtml = (text: string) => text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** The waiting slice nearest the visible one (the visible slice itself first, then alternately after and before it). */
function nextSlice(slices: readonly SliceState[]): number | undefined {
  for (let distance = 0; distance < slices.length; distance++) {
    for (const k of distance === 0 ? [visible] : [visible + distance, visible - distance]) {
      if (slices[k]?.state === "waiting") return k;
    }
  }
  return undefined;
}

/** Keeps IN_FLIGHT requests going until every slice is answered. */
function pump(): void {
  const current = job;
  if (!current) return;
  while (current.slices.filter((s) => s.state === "sent").length < IN_FLIGHT) {
    const k = nextSlice(current.slices);
    if (k === undefined) return;
    void translate(current, k);
  }
}

async function translate(current: Job, k: number): Promise<void> {
  const abort = new AbortController();
  current.slices[k] = { state: "sent", abort };
  const started = performance.now();
  try {
    const result = await client.translateSlice(
      {
        options: create(StreamOptionsSchema, { direction: current.direction, model: current.model, outputEncoding: Encoding.RAW }),
        slice: create(SliceSchema, { index: BigInt(k), image: current.source.image(k), reference: current.reference?.image(k) }),
      },
      { signal: abort.signal },
    );
    const data = result.image!.data;
    current.synthetic.set(new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)), k * current.source.width * current.source.height);
    current.slices[k] = { state: "done", quality: result.quality, ms: performance.now() - started };
    if (job === current) refreshSlice(k);
  } catch (error) {
    const failure = ConnectError.from(error);
    if (failure.code === Code.Canceled && job !== current) return;
    current.slices[k] = { state: "failed", code: Code[failure.code], message: failure.rawMessage };
  }
  if (job !== current) return;
  renderMetrics();
  pump();
}

async function files(input: HTMLInputElement, directoryInput: HTMLInputElement): Promise<File[]> {
  return [...(input.files ?? []), ...(directoryInput.files ?? [])];
}

/** (Re)starts translating whatever is open with the chosen direction and model. */
async function start(): Promise<void> {
  for (const slice of job?.slices ?? []) if (slice.state === "sent") slice.abort.abort();
  job = undefined;
  const direction = Number($<HTMLSelectElement>("direction").value) as Direction;
  const { source: from, target: to } = modalities(direction);
  $("status").textContent = "";
  try {
    const sourceFiles = await files($("source-files"), $("source-folder"));
    if (sourceFiles.length === 0) {
      $("status").textContent = "Open a NIfTI volume or a folder of PNG or DICOM slices.";
      return;
    }
    const source = await readSeries(sourceFiles, from);
    const referenceFiles = await files($("reference-files"), $("reference-folder"));
    const reference = referenceFiles.length > 0 ? await readSeries(referenceFiles, to) : undefined;
    if (reference && (reference.width !== source.width || reference.height !== source.height || reference.names.length !== source.names.length)) {
      throw new SeriesError(`the reference is ${reference.names.length} slices of ${reference.width}×${reference.height}, the series ${source.names.length} of ${source.width}×${source.height}`);
    }
    const synthetic = new Float32Array(source.values.length).fill(Number.NaN);
    job = { source, reference, direction, model: $<HTMLSelectElement>("model").value, synthetic, slices: source.names.map(() => ({ state: "waiting" })) };
    $<HTMLInputElement>("slice").max = String(source.names.length - 1);
    visible = Math.floor(source.names.length / 2);
    await showVolumes();
  } catch (error) {
    $("status").textContent = error instanceof SeriesError ? error.message : `could not open the series: ${(error as Error).message}`;
  }
}

function fillModels(): void {
  const direction = Number($<HTMLSelectElement>("direction").value) as Direction;
  const choices = models.filter((m) => m.direction === direction);
  $<HTMLSelectElement>("model").innerHTML = choices
    .map((m) => `<option value="${escapeHtml(m.name)}"${m.isDefault ? " selected" : ""}>${escapeHtml(m.name)} ${escapeHtml(m.version)} (${m.inputWidth}², ${escapeHtml(m.executionProvider)})</option>`)
    .join("");
  $<HTMLSelectElement>("ct-window").disabled = false;
}

async function loadModels(): Promise<void> {
  try {
    models = (await client.listModels({})).models;
    $("service").textContent = `${models.length} models on ${location.host}`;
    fillModels();
  } catch (error) {
    const failure = ConnectError.from(error);
    $("service").textContent = `ListModels failed: ${Code[failure.code]} ${failure.rawMessage}`;
  }
}

function main(): void {
  panels.original.attachToCanvas($<HTMLCanvasElement>("canvas-original"));
  panels.synthetic.attachToCanvas($<HTMLCanvasElement>("canvas-synthetic"));
  panels.difference.attachToCanvas($<HTMLCanvasElement>("canvas-difference"));
  for (const nv of Object.values(panels)) {
    nv.setSliceType(nv.sliceTypeAxial);
    nv.onLocationChange = (location) => {
      const vox = (location as { vox?: number[] }).vox;
      if (vox && vox[2] !== visible) showSlice(vox[2]);
    };
  }
  $("slice").addEventListener("input", (event) => showSlice(Number((event.target as HTMLInputElement).value)));
  $("opacity").addEventListener("input", (event) => {
    const overlay = panels.original.volumes[1];
    if (overlay) panels.original.setOpacity(1, Number((event.target as HTMLInputElement).value));
    $("opacity-label").textContent = `${Math.round(Number((event.target as HTMLInputElement).value) * 100)}%`;
  });
  $("ct-window").addEventListener("change", () => void showVolumes().then(() => job && job.slices.forEach((s, k) => s.state === "done" && refreshSlice(k))));
  $("direction").addEventListener("change", () => {
    fillModels();
    void start();
  });
  $("model").addEventListener("change", () => void start());
  for (const id of ["source-files", "source-folder", "reference-files", "reference-folder"]) $(id).addEventListener("change", () => void start());
  $("token").addEventListener("change", (event) => {
    token = (event.target as HTMLInputElement).value.trim();
    void loadModels();
  });
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement && event.target.type !== "range") return;
    if (event.key === "ArrowUp" || event.key === "PageUp") showSlice(visible + 1);
    if (event.key === "ArrowDown" || event.key === "PageDown") showSlice(visible - 1);
  });
  void loadModels();
}

main();
