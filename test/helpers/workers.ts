import type { Worker } from "node:worker_threads";

/**
 * Whether every one of these worker threads has stopped (a Worker's threadId
 * turns -1 then). Asked of the pool's own Worker objects rather than by
 * counting the process's OS threads, which the runtime's own helper threads,
 * started and ended lazily under load, make flaky.
 */
export const allEnded = (workers: readonly Worker[]): boolean => workers.every((worker) => worker.threadId === -1);

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
