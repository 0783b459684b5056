/** Messages between OrtWorkerPool and its workers (structured-clone safe). */

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
}

export type WorkerReady =
  | { type: "ready"; executionProvider: string; fallbackReason?: string }
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
