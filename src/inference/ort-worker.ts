/**
 * One inference worker: owns an ONNX Runtime session per model. session.run
 * blocks its thread for the whole inference, which is why it lives here and
 * not on the event loop.
 */
import { setPriority } from "node:os";
import ort from "onnxruntime-node";
import { serveWorker, type Handled } from "../workers/serve.js";
import type { OrtMethods, WorkerInit, WorkerModel, WorkerReady } from "./ort-protocol.js";

type Run = OrtMethods["run"];

serveWorker<OrtMethods, WorkerInit, WorkerReady>("ort-worker.js", async (init) => {
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
  const { sessions, ready } = await start(init);
  const byName = new Map(init.models.map((m) => [m.name, m]));
  return { ready, handlers: { run: (request) => run(sessions, byName, request) } };
});

async function openSessions(init: WorkerInit, provider: "cpu" | "cuda"): Promise<Map<string, ort.InferenceSession>> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: provider === "cuda" ? [{ name: "cuda", deviceId: init.deviceId }] : ["cpu"],
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
  };
  const sessions = new Map<string, ort.InferenceSession>();
  for (const model of init.models) {
    const session = await ort.InferenceSession.create(model.onnxPath, options);
    await warmUp(session, model);
    sessions.set(model.name, session);
  }
  return sessions;
}

/** One zero slice per model, so the first real slice does not pay for allocation and kernel selection. */
async function warmUp(session: ort.InferenceSession, model: WorkerModel): Promise<void> {
  const shape = [1, model.channels, model.height, model.width];
  const zeros = new ort.Tensor("float32", new Float32Array(model.channels * model.height * model.width), shape);
  await session.run({ [model.inputName]: zeros });
}

async function start(init: WorkerInit): Promise<{ sessions: Map<string, ort.InferenceSession>; ready: WorkerReady }> {
  if (init.device === "cpu") return { sessions: await openSessions(init, "cpu"), ready: { executionProvider: "cpu" } };
  try {
    const sessions = await openSessions(init, "cuda");
    return { sessions, ready: { executionProvider: `cuda:${init.deviceId}` } };
  } catch (error) {
    if (init.device === "cuda") throw error;
    const fallbackReason = (error as Error).message.split("\n")[0];
    return { sessions: await openSessions(init, "cpu"), ready: { executionProvider: "cpu", fallbackReason } };
  }
}

async function run(
  sessions: Map<string, ort.InferenceSession>,
  byName: Map<string, WorkerModel>,
  request: Run["request"],
): Promise<Handled<Run["reply"]>> {
  const session = sessions.get(request.model);
  const model = byName.get(request.model);
  if (!session || !model) throw new Error(`model ${request.model} is not loaded`);
  const shape = [request.batchSize, model.channels, model.height, model.width];
  const started = performance.now();
  const results = await session.run({ [model.inputName]: new ort.Tensor("float32", request.input, shape) });
  const inferenceMs = performance.now() - started;
  const output = results[model.outputName];
  // Copy out of ORT's buffer so it can be transferred without detaching memory ORT still owns.
  const data = (output.data as Float32Array).slice();
  return { value: { output: data, outputChannels: output.dims[1], inferenceMs }, transfer: [data.buffer] };
}
