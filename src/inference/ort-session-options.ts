/**
 * ONNX Runtime session options per execution provider, and where a session
 * put each node. Pure and CPU-testable; the inference worker uses them.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { InferenceSession } from "onnxruntime-node";

export interface SessionSettings {
  deviceId: number;
  /** ORT intra-op threads for CPU sessions. */
  intraOpThreads: number;
}

export function sessionOptions(provider: "cpu" | "cuda", settings: SessionSettings): InferenceSession.SessionOptions {
  const common = { interOpNumThreads: 1, graphOptimizationLevel: "all" } as const;
  if (provider === "cpu") {
    return {
      executionProviders: ["cpu"],
      intraOpNumThreads: settings.intraOpThreads,
      // ORT's CPU arena keeps the largest working set any batch ever needed: two sessions after batches of
      // 8 at 256² hold 1390 MiB with it, 231-242 MiB without, for about 15 % more time per slice (README
      // "Deploy", memory): predictable RSS is worth it where memory is bounded in bytes.
      enableCpuMemArena: false,
      ...common,
    };
  }
  return {
    executionProviders: [{ name: "cuda", deviceId: settings.deviceId }],
    // Under CUDA the intra-op pool only schedules kernel launches; more
    // threads would spin on cores that decoding and encoding need.
    intraOpNumThreads: 1,
    ...common,
    // A node without a CUDA kernel would run on the CPU, with copies across
    // the bus both ways, and nothing but a slow service to show for it: refuse
    // the session instead (with --device auto the worker then runs on CPU and
    // the log says why).
    extra: { session: { disable_cpu_ep_fallback: "1" } },
  };
}

/** `options` that also write ORT's profile (one JSON file under `dir`) until `endProfiling()`. */
export function profiled(options: InferenceSession.SessionOptions, dir: string): InferenceSession.SessionOptions {
  return { ...options, enableProfiling: true, profileFilePrefix: join(dir, "placement") };
}

/** Execution provider → operator type → node count. */
export type NodePlacement = Record<string, Record<string, number>>;

interface ProfileEvent {
  cat?: string;
  name?: string;
  args?: { provider?: string; op_name?: string };
}

/**
 * Where the nodes of one profiled run executed. onnxruntime-node has no API
 * for node placement and ORT prints it only in its verbose log (to stderr,
 * not the service's JSON log), but every node event of its profile names the
 * provider that ran it.
 */
export function nodePlacement(events: readonly ProfileEvent[]): NodePlacement {
  const placement: NodePlacement = {};
  for (const event of events) {
    // One "<node>_kernel_time" event per node execution (the others are before/after markers).
    if (event.cat !== "Node" || !event.name?.endsWith("_kernel_time")) continue;
    const provider = event.args?.provider ?? "unknown";
    const op = event.args?.op_name ?? "unknown";
    const ops = (placement[provider] ??= {});
    ops[op] = (ops[op] ?? 0) + 1;
  }
  return placement;
}

/** Reads the profile that `endProfiling()` wrote under `dir` (see `profiled`). */
export async function readPlacement(dir: string): Promise<NodePlacement> {
  const files = (await readdir(dir)).filter((f) => f.startsWith("placement") && f.endsWith(".json"));
  if (files.length !== 1) throw new Error(`expected one ORT profile in ${dir}, found ${files.length}`);
  return nodePlacement(JSON.parse(await readFile(join(dir, files[0]), "utf8")) as ProfileEvent[]);
}
