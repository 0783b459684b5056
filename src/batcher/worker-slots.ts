import { Observable, type Subscriber } from "rxjs";

/** Gives a slot back; calling it more than once is harmless. */
export type Release = () => void;

/**
 * A counting semaphore over inference workers, shared by every model's
 * batcher. Waiters are served first come, first served, so a busy model
 * cannot starve another. The number of slots follows the workers alive
 * (`resize`): while one is being replaced, batches wait here, where they can
 * still grow or be cancelled. `acquire()` is cold: subscribing asks for a
 * slot, unsubscribing before the grant withdraws the request.
 */
export class WorkerSlots {
  private readonly waiters: Subscriber<Release>[] = [];
  private held = 0;

  constructor(private capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`slots must be a positive integer, got ${capacity}`);
  }

  /** Slots not held right now. */
  get available(): number {
    return Math.max(0, this.capacity - this.held);
  }

  /** Sets the number of slots; holders beyond a smaller number keep theirs until they release them. */
  resize(capacity: number): void {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`slots must be a non-negative integer, got ${capacity}`);
    this.capacity = capacity;
    this.grantWaiting();
  }

  acquire(): Observable<Release> {
    return new Observable<Release>((subscriber) => {
      if (this.held < this.capacity && this.waiters.length === 0) {
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
    this.held++;
    let released = false;
    subscriber.next(() => {
      if (released) return;
      released = true;
      this.held--;
      this.grantWaiting();
    });
    subscriber.complete();
  }

  private grantWaiting(): void {
    while (this.held < this.capacity && this.waiters.length > 0) this.grant(this.waiters.shift()!);
  }
}
