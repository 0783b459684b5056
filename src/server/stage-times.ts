import type { MethodDefinition } from "@grpc/grpc-js";

/** A slice's stages in the order it meets them; "protobuf" is both messages' (de)serialization. */
export const STAGES = ["protobuf", "decode", "normalise", "queue", "inference", "denormalise", "encode", "metrics"] as const;
export type Stage = (typeof STAGES)[number];

export type StageTotals = Readonly<Record<Stage, { readonly main: number; readonly workers: number }>>;

/**
 * Where a slice's CPU time goes, stage by stage, split into the event loop's
 * share and the worker threads': cumulative milliseconds since the server
 * started, read by `bench --ceiling` at the warm-up's end and after the load
 * (two snapshots: nothing is reset per slice).
 */
export class StageTimes {
  private readonly totals = Object.fromEntries(STAGES.map((stage) => [stage, { main: 0, workers: 0 }])) as Record<Stage, { main: number; workers: number }>;

  add(stage: Stage, ms: number, where: "main" | "workers"): void {
    this.totals[stage][where] += ms;
  }

  /** The time of a synchronous call on the main thread, as `stage`; returns what `work` returns. */
  time<T>(stage: Stage, work: () => T): T {
    const started = performance.now();
    try {
      return work();
    } finally {
      this.add(stage, performance.now() - started, "main");
    }
  }

  snapshot(): StageTotals {
    return Object.fromEntries(STAGES.map((stage) => [stage, { ...this.totals[stage] }])) as unknown as StageTotals;
  }
}

/** `method` with its request deserializer and response serializer timed as "protobuf" on the main thread. */
export function timedCodec(method: MethodDefinition<unknown, unknown>, stages: StageTimes): MethodDefinition<unknown, unknown> {
  const { requestDeserialize, responseSerialize } = method;
  return {
    ...method,
    requestDeserialize: (bytes) => stages.time("protobuf", () => requestDeserialize(bytes)),
    responseSerialize: (value) => stages.time("protobuf", () => responseSerialize(value)),
  };
}
