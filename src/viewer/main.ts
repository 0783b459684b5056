/**
 * The medsynth viewer page (served on the web port at /viewer): opens a
 * series from disk, translates it slice by slice with unary TranslateSlice
 * calls over the Connect protocol (a few at a time, the visible slice and its
 * neighbours first), and shows original | synthetic | difference with
 * niivue, greyscale with labelled windows and orientation letters, the
 * difference in a diverging colour scale. With a reference series each slice
 * gets the service's PSNR, SSIM, UQI, VIF and MAE. Everything is bundled (no
 * CDN): it works offline. NOT FOR CLINICAL USE.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { DRAG_MODE, Niivue, NVImage } from "@niivue/niivue";
import { Direction, Encoding, SliceSchema, StreamOptionsSchema, Translator, type ModelInfo, type Quality } from "../gen/medsynth/v1/translator_pb.js";
import { readSeries, SeriesError, type Series } from "./series.js";

/** Requests in flight at once: enough to keep a batch forming, few enough that the visible slice is never far behind. */
const IN_FLIGHT = 3;
const METRICS = ["psnr", "ssim", "uqi", "vif", "mae"] as const;
const DIGITS: Record<(typeof METRICS)[number], number> = { psnr: 2, ssim: 4, uqi: 4, vif: 4, mae: 1 };

interface Window {
  level: number;
  width: number;
}
/** CT presets (HU); MR is windowed on its series' 1st–99th percentiles. */
const CT_WINDOWS: Record<string, Window> = {
  brain: { level: 40, width: 80 },
  subdural: { level: 75, width: 215 },
  "soft tissue": { level: 40, width: 400 },
  bone: { level: 600, width: 2800 },
};
/** Half-range of the difference scale: HU for CT, a quarter of the MR window's width for MR. */
const CT_DIFFERENCE_HU = 200;
/** At most this many values are sorted for an MR window: a 300-slice volume stays a fraction of a second. */
const PERCENTILE_SAMPLES = 1 << 18;

/** Greyscale, opaque at both ends. */
const GREY = "medsynth-grey";
/** Blue (synthetic below the reference) – white – red (above), ColorBrewer's RdBu reversed. */
const DIVERGING = "medsynth-difference";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let token = "";
const withToken: Interceptor = (next) => (request) => {
  if (token) request.header.set("authorization", `Bearer ${token}`);
  return next(request);
};
const client = createClient(Translator, createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [withToken] }));

type SliceState = { state: "waiting" } | { state: "sent"; abort: AbortController } | { state: "done"; quality?: Quality; ms: number } | { state: "failed"; code: string; message: string };
type Modality = "mr" | "ct";

interface Job {
  source: Series;
  reference?: Series;
  direction: Direction;
  from: Modality;
  to: Modality;
  model: string;
  synthetic: Float32Array;
  slices: SliceState[];
  /** MR windows, fixed once known so that scrolling never changes the brightness. */
  mrWindows: { source?: Window; target?: Window };
  /** One single-slice image per panel: niivue holds only what is shown, so memory and GPU uploads stay one slice each. */
  images: { original: NVImage; synthetic: NVImage; difference: NVImage };
}

let job: Job | undefined;
let visible = 0;
let models: ModelInfo[] = [];

const LABELS = ["title", "subtitle", "slice", "window", "note", "left", "right", "top", "bottom", "low", "mid", "high"] as const;
type LabelName = (typeof LABELS)[number];

interface Panel {
  nv: Niivue;
  figure: HTMLElement;
  labels: Record<LabelName, HTMLElement>;
  /** The colour scale under the image. */
  bar: HTMLElement;
}

/** A viewport as a radiology workstation draws one: name top left, image number top right, window bottom left, edge letters, a scale underneath. */
function panel(name: string): Panel {
  const figure = $(`panel-${name}`);
  figure.innerHTML = `<div class="viewport"><canvas></canvas>
    <div class="corner tl"><b data-label="title"></b><span data-label="subtitle"></span></div>
    <div class="corner tr" data-label="slice"></div><div class="corner bl" data-label="window"></div><div class="corner br" data-label="note"></div>
    <span class="edge left" data-label="left"></span><span class="edge right" data-label="right"></span>
    <span class="edge top" data-label="top"></span><span class="edge bottom" data-label="bottom"></span></div>
    <figcaption class="scale"><div class="bar"></div><div class="ticks"><span data-label="low"></span><span data-label="mid"></span><span data-label="high"></span></div></figcaption>`;
  const nv = new Niivue({
    backColor: [0, 0, 0, 1],
    crosshairWidth: 0,
    show3Dcrosshair: false,
    isColorbar: false,
    // The edge letters are the page's, from the series' own orientation (niivue's frame here only places the pixels).
    isOrientationTextVisible: false,
    loadingText: "",
    logLevel: "warn",
  });
  nv.attachToCanvas(figure.querySelector("canvas")!);
  nv.setSliceType(nv.sliceTypeAxial);
  // Windows are the page's, labelled; niivue's drag and double-click contrast would change them unlabelled.
  nv.setMouseEventConfig({ leftButton: { primary: DRAG_MODE.none }, rightButton: DRAG_MODE.none, centerButton: DRAG_MODE.none });
  nv.setTouchEventConfig({ singleTouch: DRAG_MODE.none, doubleTouch: DRAG_MODE.none });
  // A double click still resets a volume to niivue's own robust range: put the page's window back.
  nv.onIntensityChange = () => requestDraw();
  const labels = Object.fromEntries(LABELS.map((label) => [label, figure.querySelector<HTMLElement>(`[data-label="${label}"]`)!])) as Record<LabelName, HTMLElement>;
  return { nv, figure, labels, bar: figure.querySelector<HTMLElement>(".bar")! };
}

const setLabels = (p: Panel, texts: Partial<Record<LabelName, string>>) => {
  for (const [name, text] of Object.entries(texts)) p.labels[name as LabelName].textContent = text;
};

const panels = { original: panel("original"), synthetic: panel("synthetic"), difference: panel("difference") };
panels.original.nv.addColormap(GREY, { R: [0, 255], G: [0, 255], B: [0, 255], A: [255, 255], I: [0, 255] });
panels.original.nv.addColormap(DIVERGING, {
  R: [33, 103, 247, 239, 178],
  G: [102, 169, 247, 138, 24],
  B: [172, 207, 247, 98, 43],
  A: [255, 255, 255, 255, 255],
  I: [0, 64, 128, 192, 255],
});

/** The CSS gradient of a niivue colormap, for the scale under its panel. */
function gradient(name: string): string {
  const lut = panels.original.nv.colormap(name);
  const stops = Array.from({ length: 9 }, (_, n) => {
    const i = Math.min(255, n * 32) * 4;
    return `rgb(${lut[i]}, ${lut[i + 1]}, ${lut[i + 2]}) ${(n * 12.5).toFixed(1)}%`;
  });
  return `linear-gradient(to right, ${stops.join(", ")})`;
}

/** A NIfTI-1 float32 image of one width × height slice: rows from the top, columns from the left, as the raster is stored. */
function nifti(width: number, height: number, [dx, dy]: readonly [number, number]): ArrayBuffer {
  const buffer = new ArrayBuffer(352 + 4 * width * height);
  const view = new DataView(buffer);
  view.setInt32(0, 348, true);
  [3, width, height, 1, 1, 1, 1, 1].forEach((n, i) => view.setInt16(40 + 2 * i, n, true));
  view.setInt16(70, 16, true); // float32
  view.setInt16(72, 32, true);
  [1, dx, dy, 1, 1, 1, 1, 1].forEach((n, i) => view.setFloat32(76 + 4 * i, n, true));
  view.setFloat32(108, 352, true);
  view.setFloat32(112, 1, true);
  view.setInt16(254, 1, true); // sform
  // niivue's axial view puts +x right and +y up: column i at x = i, row j at y = -j.
  [[dx, 0, 0, 0], [0, -dy, 0, (height - 1) * dy], [0, 0, 1, 0]].forEach((row, r) => row.forEach((n, c) => view.setFloat32(280 + 16 * r + 4 * c, n, true)));
  new Uint8Array(buffer, 344, 4).set([0x6e, 0x2b, 0x31, 0]);
  return buffer;
}

async function sliceImage(name: string, series: Series, colormap: string): Promise<NVImage> {
  return NVImage.loadFromUrl({ url: `${name}.nii`, buffer: nifti(series.width, series.height, series.spacing), name, colormap, cal_min: 0, cal_max: 1, trustCalMinMax: true });
}

const low = (w: Window) => w.level - w.width / 2;
const high = (w: Window) => w.level + w.width / 2;

/** The 1st and 99th percentiles of the finite values, as a window. */
function percentileWindow(values: Float32Array): Window {
  const stride = Math.max(1, Math.floor(values.length / PERCENTILE_SAMPLES));
  const sample = Float32Array.from({ length: Math.ceil(values.length / stride) }, (_, n) => values[n * stride]).filter(Number.isFinite).sort();
  if (sample.length === 0) return { level: 0.5, width: 1 };
  const [p1, p99] = [sample[Math.floor(sample.length * 0.01)], sample[Math.floor(sample.length * 0.99)]];
  return { level: (p1 + p99) / 2, width: Math.max(p99 - p1, 1e-6) };
}

/** The window of the source (role "source") or target images; undefined for a synthetic MR before its first slice. */
function windowOf(current: Job, role: "source" | "target"): Window | undefined {
  const modality = role === "source" ? current.from : current.to;
  if (modality === "ct") return CT_WINDOWS[$<HTMLSelectElement>("ct-window").value] ?? CT_WINDOWS.brain;
  const cached = current.mrWindows[role];
  if (cached) return cached;
  const size = current.source.width * current.source.height;
  const firstDone = current.slices.findIndex((s) => s.state === "done");
  const values =
    role === "source" ? current.source.values : current.reference?.values ?? (firstDone >= 0 ? current.synthetic.subarray(firstDone * size, (firstDone + 1) * size) : undefined);
  return values && (current.mrWindows[role] = percentileWindow(values));
}

/** A number as a radiology overlay prints it: whole units from 100 up, three significant digits below. */
const figure = (value: number) => (Math.abs(value) >= 100 ? String(Math.round(value)) : String(Number(value.toPrecision(3))));
const unit = (modality: Modality) => (modality === "ct" ? " HU" : "");

const modalities = (direction: Direction) => (direction === Direction.MR_TO_CT ? ({ from: "mr", to: "ct" } as const) : ({ from: "ct", to: "mr" } as const));

let drawRequested = false;
/** Draws on the next frame: however many answers, slider steps or window changes come in one frame, the GPU gets one upload per panel. */
function requestDraw(): void {
  if (drawRequested) return;
  drawRequested = true;
  requestAnimationFrame(draw);
}

/** Shows slice `visible` in the three panels with the current windows and blend. */
function draw(): void {
  drawRequested = false;
  const current = job;
  if (!current) return;
  const { source, reference, synthetic, from, to, images } = current;
  const size = source.width * source.height;
  const at = (values: Float32Array) => values.subarray(visible * size, (visible + 1) * size);
  const state = current.slices[visible];
  const translated = state.state === "done";
  const sourceWindow = windowOf(current, "source")!;
  const targetWindow = windowOf(current, "target");
  const blend = translated && targetWindow ? Number($<HTMLInputElement>("opacity").value) : 0;

  // The original, with the synthetic image blended in greyscale. The blend is computed here, in display
  // units (0 black, 1 white): niivue's overlays hide values below their window, which is not a blend.
  const original = images.original.img as Float32Array;
  const [mr, synth] = [at(source.values), at(synthetic)];
  const toUnit = (value: number, w: Window) => Math.min(1, Math.max(0, (value - low(w)) / w.width));
  [images.original.cal_min, images.original.cal_max] = [0, 1];
  for (let i = 0; i < size; i++) original[i] = blend > 0 ? (1 - blend) * toUnit(mr[i], sourceWindow) + blend * toUnit(synth[i], targetWindow!) : toUnit(mr[i], sourceWindow);
  const span = to === "ct" ? CT_DIFFERENCE_HU : (targetWindow?.width ?? 4) / 4;
  if (translated) {
    (images.synthetic.img as Float32Array).set(synth);
    [images.synthetic.cal_min, images.synthetic.cal_max] = [low(targetWindow!), high(targetWindow!)];
    if (reference) {
      const [difference, truth] = [images.difference.img as Float32Array, at(reference.values)];
      for (let i = 0; i < size; i++) difference[i] = synth[i] - truth[i];
      [images.difference.cal_min, images.difference.cal_max] = [-span, span];
    }
  }
  panels.synthetic.nv.canvas!.style.visibility = translated ? "visible" : "hidden";
  panels.difference.nv.canvas!.style.visibility = translated && reference ? "visible" : "hidden";
  for (const { nv } of Object.values(panels)) nv.updateGLVolume();

  const slice = `${visible + 1} / ${current.slices.length}`;
  const spacing = `${source.width}×${source.height} · ${source.spacing.map((mm) => mm.toFixed(2)).join("×")} mm`;
  const note = state.state === "done" ? `${Math.round(state.ms)} ms` : state.state === "failed" ? `failed: ${state.code}` : "translating…";
  const windowText = (w: Window | undefined, modality: Modality) => (w ? `W ${figure(w.width)}  L ${figure(w.level)}${unit(modality)}` : "");
  const scale = (w: Window | undefined, modality: Modality) => (w ? { low: figure(low(w)), mid: `${figure(w.level)}${unit(modality)}`, high: figure(high(w)) } : { low: "", mid: "", high: "" });
  for (const p of Object.values(panels)) setLabels(p, { slice, ...source.edges });
  setLabels(panels.original, {
    title: `${from.toUpperCase()} · original`,
    subtitle: blend > 0 ? `+ synthetic ${to.toUpperCase()} ${Math.round(blend * 100)}%` : "",
    window: windowText(sourceWindow, from),
    note: spacing,
    ...scale(sourceWindow, from),
  });
  setLabels(panels.synthetic, { title: `Synthetic ${to.toUpperCase()}`, subtitle: current.model, window: windowText(targetWindow, to), note, ...scale(targetWindow, to) });
  setLabels(panels.difference, {
    title: `Synthetic − reference ${to.toUpperCase()}`,
    subtitle: reference ? "" : "open a reference series to see it",
    window: reference ? `±${figure(span)}${unit(to)}` : "",
    note: "",
    low: `−${figure(span)}`,
    mid: `0${unit(to)}`,
    high: `+${figure(span)}`,
  });
  document.body.dataset.shown = `${visible} ${$<HTMLSelectElement>("ct-window").value} ${blend}`;
}

async function showVolumes(current: Job): Promise<void> {
  for (const { nv } of Object.values(panels)) while (nv.volumes.length > 0) nv.removeVolume(nv.volumes[0]);
  for (const [name, image] of Object.entries(current.images)) panels[name as keyof typeof panels].nv.addVolume(image);
  panels.original.bar.style.background = panels.synthetic.bar.style.background = gradient(GREY);
  panels.difference.bar.style.background = gradient(DIVERGING);
  showSlice(visible);
}

function showSlice(k: number): void {
  if (!job) return;
  visible = Math.max(0, Math.min(job.slices.length - 1, k));
  $<HTMLInputElement>("slice").value = String(visible);
  $("slice-label").textContent = `${visible + 1} / ${job.slices.length} · ${job.source.names[visible]}`;
  requestDraw();
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
  } catch (error) {
    const failure = ConnectError.from(error);
    if (failure.code === Code.Canceled && job !== current) return;
    current.slices[k] = { state: "failed", code: Code[failure.code], message: failure.rawMessage };
  }
  if (job !== current) return;
  if (k === visible) requestDraw();
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
  const { from, to } = modalities(direction);
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
    const [original, synthetic, difference] = await Promise.all([sliceImage("original", source, GREY), sliceImage("synthetic", source, GREY), sliceImage("difference", source, DIVERGING)]);
    const next: Job = {
      source,
      reference,
      direction,
      from,
      to,
      model: $<HTMLSelectElement>("model").value,
      synthetic: new Float32Array(source.values.length).fill(Number.NaN),
      slices: source.names.map(() => ({ state: "waiting" })),
      mrWindows: {},
      images: { original, synthetic, difference },
    };
    job = next;
    $<HTMLInputElement>("slice").max = String(source.names.length - 1);
    visible = Math.floor(source.names.length / 2);
    await showVolumes(next);
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
  $("slice").addEventListener("input", (event) => showSlice(Number((event.target as HTMLInputElement).value)));
  $("opacity").addEventListener("input", (event) => {
    $("opacity-label").textContent = `${Math.round(Number((event.target as HTMLInputElement).value) * 100)}%`;
    requestDraw();
  });
  $("ct-window").addEventListener("change", () => requestDraw());
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
  for (const id of ["strip", "per-slice", "errors"]) {
    $(id).addEventListener("click", (event) => {
      const slice = (event.target as HTMLElement).closest<HTMLElement>("[data-slice]")?.dataset.slice;
      if (slice !== undefined) showSlice(Number(slice));
    });
  }
  for (const { figure } of Object.values(panels)) {
    figure.addEventListener(
      "wheel",
      (event) => {
        event.preventDefault();
        showSlice(visible + Math.sign(event.deltaY));
      },
      { passive: false },
    );
  }
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement && event.target.type !== "range") return;
    const step = { ArrowUp: 1, PageUp: 1, ArrowDown: -1, PageDown: -1 }[event.key];
    if (step !== undefined) showSlice(visible + step);
  });
  void loadModels();
}

main();
