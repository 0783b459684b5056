/** One inference worker thread of OrtWorkerPool (see ort-setup.ts). */
import { serveWorker } from "../workers/serve.js";
import type { OrtMethods, WorkerInit, WorkerReady } from "./ort-protocol.js";
import { setUpOrtWorker } from "./ort-setup.js";

serveWorker<OrtMethods, WorkerInit, WorkerReady>("ort-worker.js", setUpOrtWorker);
