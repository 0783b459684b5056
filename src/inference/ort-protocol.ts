/** What OrtWorkerPool's workers are set up with and serve (structured-clone safe). */

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

/** A worker's ready report: what it runs on once every session is loaded and warmed up. */
export interface WorkerReady {
  executionProvider: string;
  /** Why "auto" fell back to CPU, if it did. */
  fallbackReason?: string;
}

export type OrtMethods = {
  run: {
    request: { model: string; batchSize: number; input: Float32Array };
    reply: { output: Float32Array; outputChannels: number; inferenceMs: number };
  };
};
