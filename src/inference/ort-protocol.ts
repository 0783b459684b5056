/** Messages between OrtWorkerPool and its workers (structured-clone safe). */
import type { NodePlacement } from "./ort-session-options.js";

export type ExecutionDevice = "cpu" | "cuda" | "auto";

export interface WorkerModel {
  name: string;
  onnxPath: string;
  inputName: string;
  outputName: string;
  channels: number;
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
  /** Profile one warm-up run per model and report where its nodes ran (CUDA; one worker suffices). */
  reportPlacement: boolean;
}

/** Where one model's nodes ran on CUDA, or why that could not be read. */
export type ModelPlacement = { model: string; nodes: NodePlacement } | { model: string; error: string };

export type WorkerReady =
  | { type: "ready"; executionProvider: string; fallbackReason?: string; placement: ModelPlacement[] }
  | { type: "failed"; message: string };

export interface RunRequest {
  id: number;
  model: string;
  batchSize: number;
  input: Float32Array;
}

export type RunReply =
  | { id: number; ok: true; output: Float32Array; outputChannels: number; inferenceMs: number }
  | { id: number; ok: false; message: string };
