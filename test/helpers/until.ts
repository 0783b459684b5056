import { setTimeout as sleep } from "node:timers/promises";

/** Waits for `predicate` to hold, checking every 10 ms; fails naming `what` after `limitMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, what: string | (() => string), limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(10);
  }
}
