/** What OrtWorkerPool's workers are set up with and serve (structured-clone safe). */
import type { NodePlacement } from "./ort-session-options.js";

export type ExecutionDevice = "cpu" | "cuda" | "auto";

export interface WorkerModel {
  name: string;
  onnxPath: string;
  inputName: string;
  outputName: string;
  channels: number;
  outputChannels: number;
  width: number;
  height: number;
}

export interface WorkerInit {
  models: WorkerModel[];
  device: ExecutionDevice;
  deviceId: number;
  intraOpThreads: number;
  /** Nice value of the worker thread and its ORT threads (Linux). */
  niceness: number;
  /** Largest batch the pool will send (CUDA pads batches to sizes up to it). */
  maxBatch: number;
}

/** Where one model's nodes ran on CUDA, or why that could not be read. */
export type ModelPlacement = { model: string; nodes: NodePlacement } | { model: string; error: string };

/** A worker's ready report: what it runs on once every session is loaded and warmed up. */
export interface WorkerReady {
  executionProvider: string;
  /** Why "auto" fell back to CPU, if it did. */
  fallbackReason?: string;
  /** On CUDA, where each model's nodes ran in a profiled warm-up; empty on CPU. */
  placement: ModelPlacement[];
  /** Per model, ms one warmed-up slice took: what batch deadlines start from. */
  sliceMs: Record<string, number>;
}

export type OrtMethods = {
  run: {
    /** One C×H×W row per slice, each its own buffer; they come back as the outputs where the sizes allow. */
    request: { model: string; inputs: Float32Array[] };
    reply: { outputs: Float32Array[]; outputChannels: number; inferenceMs: number };
  };
};
