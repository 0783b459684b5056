/**
 * WebAssembly modules built from assembly/ into dist/wasm/ by `npm run
 * build`: one instance per thread (every worker imports its own copy of
 * this module), made on first use with a synchronous read and compile of a
 * few kilobytes.
 */
import { readFileSync } from "node:fs";

/** The parts of the WebAssembly JS API used here (its types come with lib "dom", which this project leaves out). */
const { Module, Instance } = (globalThis as unknown as {
  WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (module: object) => { exports: unknown } };
}).WebAssembly;

/**
 * WebAssembly memory a thread should keep from one image to the next:
 * enough for slices up to about 1400² (the metrics take 30 bytes per pixel).
 * An instance's memory never shrinks, so a worker thread whose instances
 * grew beyond this for a larger image is replaced after it (serveWorker).
 */
export const RETAINED_MEMORY_BYTES = 64 * 1024 * 1024;

/** The memories of this thread's instances. */
const memories: { readonly buffer: ArrayBuffer }[] = [];

/** Bytes of WebAssembly memory this thread's instances hold, all modules together. */
export function wasmMemoryBytes(): number {
  return memories.reduce((sum, memory) => sum + memory.buffer.byteLength, 0);
}

/**
 * An instance of dist/wasm/`file`, set up by `use`, made on the first get().
 * get() is undefined where the module does not load (not built, or a
 * runtime without WebAssembly SIMD); the reason is failure() and a process
 * warning, once, saying that `fallback` takes over.
 */
export function lazyInstance<T>(file: string, fallback: string, use: (exports: unknown) => T): { get(): T | undefined; failure(): unknown } {
  let loaded: { value: T } | { failure: unknown } | undefined;
  const load = () => {
    try {
      const module = new Module(readFileSync(new URL(`../../wasm/${file}`, import.meta.url)));
      const { exports } = new Instance(module);
      const value = use(exports);
      const { memory } = exports as { memory?: { buffer: ArrayBuffer } };
      if (memory) memories.push(memory);
      return { value };
    } catch (failure) {
      process.emitWarning(`${fallback}: ${String(failure)}`, "MedsynthWarning");
      return { failure };
    }
  };
  return {
    get: () => {
      loaded ??= load();
      return "value" in loaded ? loaded.value : undefined;
    },
    failure: () => (loaded && "failure" in loaded ? loaded.failure : undefined),
  };
}
