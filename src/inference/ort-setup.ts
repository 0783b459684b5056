/**
 * What an inference worker runs: an ONNX Runtime session per model, loaded
 * and warmed up, and the `run` handler. session.run blocks its thread for the
 * whole inference, which is why this lives in a worker (ort-worker.ts) and
 * not on the event loop.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import ort from "onnxruntime-node";
import type { Handled, Served } from "../workers/serve.js";
import { paddedBatchSizes, paddedSize, stackBatch, unstackBatch } from "./batch-shapes.js";
import type { ModelPlacement, OrtMethods, WorkerInit, WorkerModel, WorkerReady } from "./ort-protocol.js";
import { profiled, readPlacement, sessionOptions } from "./ort-session-options.js";

type Run = OrtMethods["run"];

/** Sets up one inference worker from the pool's init: every model loaded and warmed up. */
export async function setUpOrtWorker(init: WorkerInit): Promise<Served<OrtMethods, WorkerReady>> {
  // Inference saturates every core; the event loop must still get the CPU the
  // moment it has work, or every stream's latency suffers. On Linux a priority
  // set without a pid applies to the calling thread, and the ORT threads created
  // below inherit it. Elsewhere this lowers the whole process, so skip it there.
  if (process.platform === "linux") {
    try {
      setPriority(init.niceness);
    } catch {
      // Not permitted (e.g. a seccomp profile): run at normal priority.
    }
  }
  const { opened, ready } = await start(init);
  const byName = new Map(init.models.map((m) => [m.name, m]));
  return { ready, handlers: { run: (request) => run(opened, byName, request) } };
}

interface Opened {
  sessions: Map<string, ort.InferenceSession>;
  /** Batch sizes warmed up; a batch is padded to the smallest that holds it. */
  batchSizes: number[];
  placement: ModelPlacement[];
  /** Per model, ms of its last one-slice warm-up run. */
  sliceMs: Record<string, number>;
}

async function openSessions(init: WorkerInit, provider: "cpu" | "cuda"): Promise<Opened> {
  const options = sessionOptions(provider, init);
  // CUDA: every padded size, since cuDNN searches algorithms per new shape.
  // CPU: one slice, to allocate; [1] also means no padding (larger batches run as they are).
  const batchSizes = provider === "cuda" ? paddedBatchSizes(init.maxBatch) : [1];
  const sessions = new Map<string, ort.InferenceSession>();
  const placement: ModelPlacement[] = [];
  const sliceMs: Record<string, number> = {};
  for (const model of init.models) {
    if (provider === "cuda") {
      const { session, nodes } = await openProfiled(model, options);
      sessions.set(model.name, session);
      placement.push(nodes);
    } else {
      sessions.set(model.name, await ort.InferenceSession.create(model.onnxPath, options));
    }
    for (const size of batchSizes) await warmUp(sessions.get(model.name)!, model, size);
    // Once more at one slice, allocation and kernel choice done: the time a batch's deadline starts from.
    const started = performance.now();
    await warmUp(sessions.get(model.name)!, model, 1);
    sliceMs[model.name] = performance.now() - started;
  }
  return { sessions, batchSizes, placement, sliceMs };
}

/** A session whose first run is profiled for node placement; a profile that cannot be read costs only the report. */
async function openProfiled(
  model: WorkerModel,
  options: ort.InferenceSession.SessionOptions,
): Promise<{ session: ort.InferenceSession; nodes: ModelPlacement }> {
  const dir = await mkdtemp(join(tmpdir(), "medsynth-placement-")).catch((error: Error) => error);
  if (dir instanceof Error) {
    return { session: await ort.InferenceSession.create(model.onnxPath, options), nodes: { model: model.name, error: dir.message } };
  }
  try {
    const session = await ort.InferenceSession.create(model.onnxPath, profiled(options, dir));
    await warmUp(session, model, 1);
    session.endProfiling();
    const nodes = await readPlacement(dir).then(
      (placed): ModelPlacement => ({ model: model.name, nodes: placed }),
      (error: Error): ModelPlacement => ({ model: model.name, error: error.message }),
    );
    return { session, nodes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A zero batch, so the first real one of this size does not pay for allocation and kernel selection. */
async function warmUp(session: ort.InferenceSession, model: WorkerModel, batchSize: number): Promise<void> {
  const shape = [batchSize, model.channels, model.height, model.width];
  const zeros = new ort.Tensor("float32", new Float32Array(batchSize * model.channels * model.height * model.width), shape);
  await session.run({ [model.inputName]: zeros });
}

async function start(init: WorkerInit): Promise<{ opened: Opened; ready: WorkerReady }> {
  const ready = (opened: Opened, executionProvider: string, fallbackReason?: string) => ({
    opened,
    ready: { executionProvider, fallbackReason, placement: opened.placement, sliceMs: opened.sliceMs },
  });
  if (init.device === "cpu") return ready(await openSessions(init, "cpu"), "cpu");
  try {
    return ready(await openSessions(init, "cuda"), `cuda:${init.deviceId}`);
  } catch (error) {
    if (init.device === "cuda") throw error;
    const fallbackReason = (error as Error).message.split("\n")[0];
    return ready(await openSessions(init, "cpu"), "cpu", fallbackReason);
  }
}

/**
 * The batch's input and output tensors, one of each per worker, reused from
 * batch to batch (ORT writes the output into ours rather than allocating
 * one per run): they only grow, to the largest padded batch met.
 */
const buffers = { input: new Float32Array(0), output: new Float32Array(0) };
function reused(which: keyof typeof buffers, length: number): Float32Array {
  if (buffers[which].length < length) buffers[which] = new Float32Array(length);
  return buffers[which].subarray(0, length);
}

async function run(
  { sessions, batchSizes }: Opened,
  byName: Map<string, WorkerModel>,
  { model: name, inputs }: Run["request"],
): Promise<Handled<Run["reply"]>> {
  const session = sessions.get(name);
  const model = byName.get(name);
  if (!session || !model) throw new Error(`model ${name} is not loaded`);
  const size = paddedSize(inputs.length, batchSizes);
  const plane = model.height * model.width;
  const input = stackBatch(inputs, size, reused("input", size * model.channels * plane));
  const output = reused("output", size * model.outputChannels * plane);
  const started = performance.now();
  const results = await session.run(
    { [model.inputName]: new ort.Tensor("float32", input, [size, model.channels, model.height, model.width]) },
    { [model.outputName]: new ort.Tensor("float32", output, [size, model.outputChannels, model.height, model.width]) },
  );
  const inferenceMs = performance.now() - started;
  // ORT passes over a fetch it has no output for: the manifest's name must be checked here.
  const result = results[model.outputName];
  if (!result) throw new Error(`model ${name} has no output "${model.outputName}" (it has ${Object.keys(results).join(", ")})`);
  // The real rows, copied out of ORT's result (our reused output) into the input rows' own buffers, which go back.
  const outputs = unstackBatch(result.data as Float32Array, size, inputs);
  return { value: { outputs, outputChannels: result.dims[1], inferenceMs }, transfer: outputs.map((row) => row.buffer as ArrayBuffer) };
}
