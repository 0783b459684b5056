import { Observable, type Subscriber } from "rxjs";

/** Gives a slot back; calling it more than once is harmless. */
export type Release = () => void;

/**
 * A counting semaphore over inference workers, shared by every model's
 * batcher. Waiters are served first come, first served, so a busy model
 * cannot starve another. `acquire()` is cold: subscribing asks for a slot,
 * unsubscribing before the grant withdraws the request.
 */
export class WorkerSlots {
  private readonly waiters: Subscriber<Release>[] = [];

  constructor(private free: number) {
    if (!Number.isInteger(free) || free < 1) throw new RangeError(`slots must be a positive integer, got ${free}`);
  }

  /** Slots not held right now. */
  get available(): number {
    return this.free;
  }

  acquire(): Observable<Release> {
    return new Observable<Release>((subscriber) => {
      if (this.free > 0 && this.waiters.length === 0) {
        this.free--;
        this.grant(subscriber);
        return undefined;
      }
      this.waiters.push(subscriber);
      return () => {
        const i = this.waiters.indexOf(subscriber);
        if (i >= 0) this.waiters.splice(i, 1);
      };
    });
  }

  private grant(subscriber: Subscriber<Release>): void {
    let released = false;
    subscriber.next(() => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) this.grant(next);
      else this.free++;
    });
    subscriber.complete();
  }
}
