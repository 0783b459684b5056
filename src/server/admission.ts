/**
 * Memory bounded in bytes: every slice is admitted against a per-stream and
 * a global in-flight budget before it reaches the handler, counted by what
 * its images declare they decode to (imaging/declared-size.ts), so before
 * any decoding, or by their bytes as sent where those are more. A slice
 * that does not fit is held here, and while it is held
 * grpc-js reads nothing more of its stream: HTTP/2 flow control pushes back
 * on the sender. Nothing is refused; a slice waits until the answers of
 * earlier ones have been written out (the handler releases each admission
 * then) or its call ends. TranslateSlice calls, on the gRPC and the web
 * port alike, wait in `admit()` inside the shared handler instead.
 */
import { ServerInterceptingCall, type ServerInterceptor } from "@grpc/grpc-js";
import { Observable } from "rxjs";
import { DEFAULT_WINDOW } from "../contract/limits.js";
import { type Slice, type TranslateRequest } from "../gen/medsynth/v1/translator_pb.js";
import { TRANSLATE_PATH } from "../contract/service.js";
import { admittedBytes } from "../imaging/declared-size.js";

const MiB = 1024 * 1024;

/** Field names match the server config keys (flag --window-bytes = windowBytes). */
export interface InFlightOptions {
  /** Slices one stream may have in flight (admitted, answer not yet written) before the server stops reading it. */
  window: number;
  /** Declared bytes one stream may have in flight; a lone slice larger than this is still admitted, alone. */
  windowBytes: number;
  /** Declared bytes in flight over all streams and TranslateSlice calls; a lone slice larger than this is admitted alone. */
  maxInflightBytes: number;
  /** Largest width or height a slice may have: bounds what an unreadable compressed header counts as. */
  maxDimension: number;
}

/**
 * Sized for the 8 GiB pod of deploy/k8s (README "Deploy": RSS measured at
 * these defaults): a slice in flight costs about four times its declared
 * bytes at its peak (message, decoded rasters, resized output, encoded
 * answer), so 512 MiB admitted stays within a few GB over the warmed-up
 * server. 256 MiB per stream: two 4096² float32 slices with references.
 */
export const DEFAULT_IN_FLIGHT: Omit<InFlightOptions, "maxDimension"> = {
  window: DEFAULT_WINDOW,
  windowBytes: 256 * MiB,
  maxInflightBytes: 512 * MiB,
};


/** One admitted slice; `release()` (idempotent) gives its bytes back once its answer is written. */
export interface Admission {
  readonly bytes: number;
  release(): void;
}

interface Held {
  readonly bytes: number;
  readonly admit: () => void;
}

/** One call's share: what it has in flight, and the message it holds back, if any. */
interface CallBudget {
  bytes: number;
  held: Held | undefined;
  readonly admitted: Set<Admission>;
}

export class InFlightBudget {
  private bytes = 0;
  /** Calls holding a message, in the order they started waiting. */
  private readonly waiting: CallBudget[] = [];
  private readonly admissions = new WeakMap<object, Admission>();

  constructor(private readonly options: InFlightOptions) {}

  /** Declared bytes admitted and not yet released, all calls. */
  get inflightBytes(): number {
    return this.bytes;
  }

  /** The admission of a request message the handler received (undefined for one that needed none, e.g. StreamOptions). */
  admissionOf(message: object): Admission | undefined {
    return this.admissions.get(message);
  }

  /** Bytes a slice counts as: its image and its reference, each as declared decoded or as sent, whichever is more. */
  private sliceBytes(slice: Slice | undefined): number {
    return admittedBytes(slice?.image, this.options.maxDimension) + admittedBytes(slice?.reference, this.options.maxDimension);
  }

  /**
   * A TranslateSlice call's admission, on whichever port it came: emits (and
   * completes) once the slice fits; unsubscribing before that drops the wait.
   * The whole message has arrived already, so holding it back in the
   * transport would gain nothing: it waits here, before any decoding.
   */
  admit(slice: Slice): Observable<Admission> {
    return new Observable<Admission>((subscriber) => {
      const budget: CallBudget = { bytes: 0, held: undefined, admitted: new Set() };
      this.request(budget, this.sliceBytes(slice), (admission) => {
        subscriber.next(admission);
        subscriber.complete();
      });
      return () => {
        if (budget.held) this.close(budget);
      };
    });
  }

  /** Install in `new Server({ interceptors })`, after authentication and the stream limits: holds back Translate streams. */
  readonly interceptor: ServerInterceptor = (method, call) => {
    if (method.path !== TRANSLATE_PATH) return new ServerInterceptingCall(call);
    const slice = (message: TranslateRequest) => (message.kind.case === "slice" ? message.kind.value : undefined);
    const budget: CallBudget = { bytes: 0, held: undefined, admitted: new Set() };
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.close(budget);
    };
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMessage: (message, pass) => {
            const counted = slice(message as never);
            // StreamOptions, a message that could not be read: the handler deals with them, nothing to hold.
            if (counted === undefined || ended) return pass(message);
            this.request(budget, this.sliceBytes(counted), (admission) => {
              this.admissions.set(message as object, admission);
              pass(message);
            });
          },
          onCancel: end,
        }),
      sendStatus: (status, pass) => {
        end();
        pass(status);
      },
    });
  };

  private request(budget: CallBudget, bytes: number, onAdmitted: (admission: Admission) => void): void {
    budget.held = {
      bytes,
      admit: () => {
        budget.bytes += bytes;
        this.bytes += bytes;
        let released = false;
        const admission: Admission = {
          bytes,
          release: () => {
            if (released) return;
            released = true;
            budget.bytes -= bytes;
            this.bytes -= bytes;
            budget.admitted.delete(admission);
            this.pump();
          },
        };
        budget.admitted.add(admission);
        onAdmitted(admission);
      },
    };
    this.waiting.push(budget);
    this.pump();
  }

  /**
   * Admits what fits: a call waiting on its own window does not hold up the
   * others, but calls waiting on the shared budget are served in the order
   * they started waiting, so a stream of small slices cannot starve a large one.
   */
  private pump(): void {
    let sharedFull = false;
    for (const budget of [...this.waiting]) {
      const held = budget.held!;
      const slices = budget.admitted.size;
      const ownFits = slices === 0 || (slices < this.options.window && budget.bytes + held.bytes <= this.options.windowBytes);
      if (!ownFits) continue;
      sharedFull ||= this.bytes > 0 && this.bytes + held.bytes > this.options.maxInflightBytes;
      if (sharedFull) continue;
      this.waiting.splice(this.waiting.indexOf(budget), 1);
      budget.held = undefined;
      held.admit();
    }
  }

  /** The call ended: what it holds is dropped and what it has in flight is given back. */
  private close(budget: CallBudget): void {
    if (budget.held) {
      this.waiting.splice(this.waiting.indexOf(budget), 1);
      budget.held = undefined;
    }
    for (const admission of [...budget.admitted]) admission.release();
    this.pump();
  }
}
