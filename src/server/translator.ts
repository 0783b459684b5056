import { create } from "@bufbuild/protobuf";
import { status, type ServerDuplexStream } from "@grpc/grpc-js";
import { defer, finalize, map, of, Subscription, switchMap, type Observable } from "rxjs";
import type { MicroBatcher } from "../batcher/micro-batcher.js";
import { directionName } from "../contract/direction.js";
import { transportFailureOf, unreadableReason, type ServiceImpl, type TransportFailure } from "../contract/service.js";
import { isSliceError, quote } from "../contract/slice-errors.js";
import {
  Direction,
  Encoding,
  ListModelsResponseSchema,
  ModelInfoSchema,
  TranslateResponseSchema,
  Translator,
  type ListModelsResponse,
  type SliceResult,
  type StreamOptions,
  type TranslateRequest,
  type TranslateSliceRequest,
  type TranslateResponse,
} from "../gen/medsynth/v1/translator_pb.js";
import { createDerivedSeries } from "../imaging/dicom.js";
import type { ModelSpec } from "../inference/registry.js";
import type { ModelOutput } from "../inference/runner.js";
import type { Telemetry } from "../telemetry/telemetry.js";
import type { Admission, InFlightBudget } from "./admission.js";
import { answerSlice, type AnswerDeps } from "./answer.js";
import type { StreamContext } from "./pipeline.js";

export interface TranslatorDeps extends AnswerDeps {
  models: readonly ModelSpec[];
  batchers: ReadonlyMap<string, MicroBatcher<Float32Array, ModelOutput>>;
  /** Each slice's admission against the in-flight budgets, given back once its answer is written. */
  admissions: Pick<InFlightBudget, "admissionOf" | "admit">;
  executionProvider: string;
  /** UID root of derived DICOM instances, and whether they are de-identified (PS3.15 basic profile). */
  dicom: { uidRoot: string; deidentify: boolean };
  telemetry: Telemetry;
}

/** How a call ends when it does not end with a result. */
export interface CallStatus {
  code: status;
  details: string;
}

/** Longest model name a caller may ask for (manifest names are far shorter). */
const MAX_MODEL_NAME = 256;

/** The stream's model and options, or the status that ends the stream. */
function resolveStream(deps: TranslatorDeps, options: StreamOptions | undefined): StreamContext | CallStatus {
  if (!options) return { code: status.INVALID_ARGUMENT, details: "options: missing; the first message must carry StreamOptions" };
  if (options.direction !== Direction.MR_TO_CT && options.direction !== Direction.CT_TO_MR) {
    return { code: status.INVALID_ARGUMENT, details: "options.direction: set DIRECTION_MR_TO_CT or DIRECTION_CT_TO_MR" };
  }
  if (!Object.values(Encoding).includes(options.outputEncoding)) {
    return { code: status.INVALID_ARGUMENT, details: `options.output_encoding: unknown encoding ${options.outputEncoding}` };
  }
  if (options.model.length > MAX_MODEL_NAME) {
    return {
      code: status.INVALID_ARGUMENT,
      details: `options.model: ${options.model.length} characters, more than the ${MAX_MODEL_NAME} a model name may have; ListModels shows the loaded ones`,
    };
  }
  const model = options.model
    ? deps.models.find((m) => m.name === options.model)
    : deps.models.find((m) => m.direction === options.direction && m.isDefault);
  if (!model) {
    const details = options.model
      ? `options.model: no model named ${quote(options.model)}; loaded: ${deps.models.map((m) => `${m.name} (${directionName(m.direction)})`).join(", ")}`
      : `options.direction: no model for ${directionName(options.direction)} is loaded`;
    return { code: status.NOT_FOUND, details };
  }
  if (model.direction !== options.direction) {
    return {
      code: status.INVALID_ARGUMENT,
      details: `options.model: "${model.name}" translates ${directionName(model.direction)}, not ${directionName(options.direction)}`,
    };
  }
  return {
    model,
    batcher: deps.batchers.get(model.name)!,
    outputEncoding: options.outputEncoding,
    foreground: options.foregroundMetrics,
    derivedSeries: createDerivedSeries({
      direction: directionName(model.direction),
      modelName: model.name,
      modelVersion: model.version,
      ...deps.dicom,
    }),
  };
}

export const isStatus = (value: object): value is CallStatus => "code" in value && "details" in value;

const ANSWERED_FIRST = "every slice sent before it was answered";

/**
 * The status a message grpc-js could not read ends a stream with (its stand-in, statuses.ts), naming the
 * limit's flag where there is one, and how many slices were accepted before it, all of them answered
 * first: where the client resumes.
 */
function readFailureStatus({ code, details }: TransportFailure, accepted: number): CallStatus {
  const flag = code === status.RESOURCE_EXHAUSTED ? " (--max-message-bytes)" : "";
  return { code, details: `${details}${flag}; ${answeredBefore(accepted)}` };
}

const answeredBefore = (count: number): string => `${count} ${count === 1 ? "slice" : "slices"} answered before it`;

/** A slice accepted by the stream: its answer once done, and its admission to give back once that is written. */
interface Accepted {
  response?: TranslateResponse;
  readonly admission: Admission | undefined;
}

/**
 * One Translate stream. Answers leave in the order slices arrived, each as
 * soon as it and every earlier one is done. How many slices (and bytes) are
 * in flight is bounded before they get here (InFlightBudget): beyond it
 * grpc-js reads nothing more of the stream. A message that ends the stream
 * (one that cannot be read, a second StreamOptions, one larger than the
 * limit) is answered only after every slice accepted before it.
 */
class StreamSession {
  private context: StreamContext | undefined;
  private readonly order: Accepted[] = [];
  private readonly work = new Subscription();
  /** Messages received, StreamOptions included: names the one that ends a stream. */
  private received = 0;
  /** Slices accepted and not yet written out. */
  private inFlight = 0;
  private halfClosed = false;
  /** Once set, no more slices are accepted, and the stream ends with it after the last answer. */
  private ending: CallStatus | undefined;
  /** Slices accepted: what a read failure's status counts. */
  private accepted = 0;
  private closed = false;

  constructor(
    private readonly deps: TranslatorDeps,
    private readonly call: ServerDuplexStream<TranslateRequest, TranslateResponse>,
    private readonly onClose: () => void,
  ) {
    call.on("data", (request: TranslateRequest) => this.receive(request));
    call.on("end", () => {
      this.halfClosed = true;
      this.maybeEnd();
    });
    call.on("cancelled", () => this.close());
    call.on("error", () => this.close());
  }

  /**
   * Accepts nothing more, and ends the stream with UNAVAILABLE once every slice it accepted is answered; a
   * stream its client already closed just finishes (OK): there is nothing left for the client to resume.
   */
  endAfterAccepted(details: string): void {
    if (this.halfClosed) return;
    this.endAfterAnswers({ code: status.UNAVAILABLE, details: `${details}; ${answeredBefore(this.accepted)}` });
  }

  /** Ends the stream now with UNAVAILABLE, dropping the slices still in flight; the status counts both. */
  abort(details: string): void {
    const answered = this.accepted - this.inFlight;
    this.fail(status.UNAVAILABLE, `${details}; ${answeredBefore(answered)}, ${this.inFlight} in flight not answered`);
  }

  /** Ends the stream now with a status; slices still in flight are dropped from the queue. */
  fail(code: status, details: string): void {
    if (this.closed) return;
    this.close();
    this.call.emit("error", { code, details });
  }

  private receive(request: TranslateRequest): void {
    const at = ++this.received;
    const admission = this.deps.admissions.admissionOf(request);
    // Past the message that ends the stream nothing is accepted: the client learns why from the status.
    if (this.closed || this.ending) return admission?.release();
    const failure = transportFailureOf(request);
    if (failure) return this.endAfterAnswers(readFailureStatus(failure, this.accepted));
    const unreadable = unreadableReason(request);
    if (unreadable !== undefined) {
      return this.endAfterAnswers({ code: status.INVALID_ARGUMENT, details: `message ${at} is not a TranslateRequest (${quote(unreadable)}); ${ANSWERED_FIRST}` });
    }
    if (!this.context) {
      const resolved = resolveStream(this.deps, request.kind.case === "options" ? request.kind.value : undefined);
      if (isStatus(resolved)) return this.fail(resolved.code, resolved.details);
      this.context = resolved;
      return;
    }
    if (request.kind.case !== "slice") {
      const details = request.kind.case === "options"
        ? `options: message ${at} repeats StreamOptions; send it once, as the first message, then only Slices`
        : `slice: message ${at} carries neither a Slice nor StreamOptions (empty, or only fields this server does not know); after the StreamOptions send only Slices`;
      return this.endAfterAnswers({ code: status.INVALID_ARGUMENT, details: `${details}; ${ANSWERED_FIRST}` });
    }
    const entry: Accepted = { admission };
    this.order.push(entry);
    this.inFlight++;
    this.accepted++;
    this.work.add(
      answerSlice(this.deps, this.context, request.kind.value).subscribe((answer) => {
        entry.response = create(TranslateResponseSchema, {
          kind: isSliceError(answer) ? { case: "error", value: answer } : { case: "result", value: answer },
        });
        this.flush();
      }),
    );
  }

  private flush(): void {
    while (!this.closed && this.order[0]?.response) {
      const { response, admission } = this.order.shift()!;
      this.call.write(response!, () => {
        this.inFlight--;
        admission?.release();
        this.maybeEnd();
      });
    }
  }

  private endAfterAnswers(ending: CallStatus): void {
    this.ending ??= ending;
    this.maybeEnd();
  }

  private maybeEnd(): void {
    if (this.closed || this.inFlight > 0) return;
    if (this.ending) return this.fail(this.ending.code, this.ending.details);
    if (!this.halfClosed) return;
    if (!this.context) return this.fail(status.INVALID_ARGUMENT, "options: the stream ended before StreamOptions arrived");
    this.close();
    this.call.end();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.work.unsubscribe();
    this.onClose();
  }
}

/** The Translator service, plus the bookkeeping a graceful drain needs. */
export class TranslatorService {
  private readonly sessions = new Set<StreamSession>();
  private draining = false;
  private idle: (() => void) | undefined;
  /** TranslateSlice calls not yet answered, over both ports. */
  private unaryCalls = 0;

  constructor(private readonly deps: TranslatorDeps) {}

  get openStreams(): number {
    return this.sessions.size;
  }

  /**
   * Refuses new calls from now on; resolves when every open stream has ended
   * (its client half-closed and every slice was answered) and every
   * TranslateSlice call was answered.
   */
  drain(): Promise<void> {
    this.draining = true;
    if (this.sessions.size === 0 && this.unaryCalls === 0) return Promise.resolve();
    return new Promise((resolve) => (this.idle = resolve));
  }

  private callEnded(): void {
    if (this.draining && this.sessions.size === 0 && this.unaryCalls === 0) this.idle?.();
  }

  /** The drain took too long: every open stream accepts nothing more and ends with UNAVAILABLE once its accepted slices are answered. */
  endAll(details: string): void {
    for (const session of [...this.sessions]) session.endAfterAccepted(details);
  }

  /** Ends every open stream with UNAVAILABLE now, answered or not (its slices still computing, or a client not reading). */
  abortAll(details: string): void {
    for (const session of [...this.sessions]) session.abort(details);
  }

  /** The status a new call is refused with, or undefined while the server takes calls. */
  refusal(): CallStatus | undefined {
    if (this.draining) return { code: status.UNAVAILABLE, details: "server is draining; connect to another instance" };
    return undefined;
  }

  /**
   * One TranslateSlice call, whatever the transport: its SliceResult, or the
   * status the call ends with. Cold: unsubscribing (a cancelled call, an
   * aborted browser request) takes the slice out of the queue.
   */
  translateSlice(request: TranslateSliceRequest): Observable<SliceResult | CallStatus> {
    const refused = this.refusal();
    if (refused) return of(refused);
    const context = resolveStream(this.deps, request.options);
    if (isStatus(context)) return of(context);
    const slice = request.slice;
    if (!slice) return of({ code: status.INVALID_ARGUMENT, details: "slice: missing" });
    return defer(() => {
      this.unaryCalls++;
      // Counted by the byte budgets until it is answered or cancelled, on every port.
      return this.deps.admissions.admit(slice).pipe(
        switchMap((admission) => answerSlice(this.deps, context, slice).pipe(finalize(() => admission.release()))),
        map((answer) => (isSliceError(answer) ? { code: answer.code, details: answer.message } : answer)),
        finalize(() => {
          this.unaryCalls--;
          this.callEnded();
        }),
      );
    });
  }

  /** The loaded models, as ListModels answers on every port. */
  listModels(): ListModelsResponse {
    return create(ListModelsResponseSchema, {
      models: this.deps.models.map((m) =>
        create(ModelInfoSchema, {
          name: m.name,
          direction: m.direction,
          inputWidth: m.input.width,
          inputHeight: m.input.height,
          channels: m.input.channels,
          version: m.version,
          executionProvider: this.deps.executionProvider,
          // Listed only once every worker has loaded and warmed it up.
          ready: true,
          isDefault: m.isDefault,
          description: m.description,
        }),
      ),
    });
  }

  /** The grpc-js handlers. */
  readonly implementation: ServiceImpl<typeof Translator> = {
    translate: (call) => {
      const refused = this.refusal();
      if (refused) return void call.emit("error", refused);
      this.deps.telemetry.streamOpened();
      const session = new StreamSession(this.deps, call, () => {
        this.sessions.delete(session);
        this.deps.telemetry.streamClosed();
        this.callEnded();
      });
      this.sessions.add(session);
    },

    translateSlice: (call, callback) => {
      const subscription = this.translateSlice(call.request).subscribe((answer) =>
        isStatus(answer) ? callback(answer) : callback(null, answer),
      );
      call.on("cancelled", () => subscription.unsubscribe());
    },

    listModels: (_call, callback) => callback(null, this.listModels()),
  };
}
