import { VirtualTimeScheduler } from "rxjs";

/** Runs `scheduler`'s clock forward to `frame` (ms), executing every action due by then. */
export function advanceTo(scheduler: VirtualTimeScheduler, frame: number): void {
  // An action at `frame` itself, so that the clock stops there even when nothing else is due.
  scheduler.schedule(() => undefined, frame - scheduler.now());
  scheduler.maxFrames = frame;
  scheduler.flush();
}
