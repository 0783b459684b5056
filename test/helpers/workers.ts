import type { Worker } from "node:worker_threads";

/**
 * Kills a pool's first worker as a crash would. The pool learns of it only
 * from the worker's exit, so a call made right after goes to the dying
 * worker and is lost with it.
 */
export function killFirstWorker(pool: { readonly threads: readonly Worker[] }): Worker {
  const [victim] = pool.threads;
  void victim.terminate();
  return victim;
}
