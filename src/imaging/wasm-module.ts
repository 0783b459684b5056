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
      return { value: use(new Instance(module).exports) };
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
