/**
 * STOW-RS (DICOMweb Store, PS3.18 §10.5): posts DICOM Part-10 instances to a
 * PACS, one instance per request, as multipart/related;
 * type="application/dicom". Used by the server (--stow-url: every derived
 * instance it makes) and by the CLI (translate --stow-url: every instance it
 * receives). Storing runs beside the answers and never holds one up: an
 * instance is queued (bounded in bytes), sent with bounded retries and
 * exponential backoff, and each outcome is reported once. A retry re-sends
 * the same bytes, so the same SOP Instance UID: a PACS that did store an
 * earlier attempt sees the same instance again, not a duplicate.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  asyncScheduler,
  catchError,
  defer,
  from,
  map,
  mergeMap,
  Observable,
  of,
  retry,
  Subject,
  throwError,
  timeout,
  timer,
  type SchedulerLike,
  type Subscription,
} from "rxjs";

export interface StowOptions {
  /** DICOMweb base URL (e.g. http://pacs:8042/dicom-web); instances are posted to <url>/studies. */
  url: string;
  /** The Authorization header sent with every request (see stowAuthorization); never logged. */
  authorization?: string;
  /** Attempts after the first for a failure that may pass (network, timeout, 408, 429, 5xx). */
  retries: number;
  /** Wait before the first retry, ms; doubled for each further one. */
  backoffMs: number;
  /** Longest wait for one request's answer, ms. */
  timeoutMs: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** Bytes of instances queued or in flight; an instance past it is dropped (status "dropped"). */
  maxPendingBytes: number;
  /** Clock of the backoff and the timeout (default asyncScheduler). */
  scheduler?: SchedulerLike;
}

export const DEFAULT_STOW_OPTIONS: Omit<StowOptions, "url" | "authorization"> = {
  retries: 3,
  backoffMs: 500,
  timeoutMs: 30_000,
  concurrency: 2,
  maxPendingBytes: 256 * 1024 * 1024,
};

/** How one instance's store ended. */
export interface StowOutcome {
  /** The caller's label of the instance (e.g. its slice index). */
  label: string;
  /** The HTTP status ("200", "401", ...), or "rejected" (listed as failed in a 200 answer), "unreachable", "timeout", "dropped". */
  status: string;
  ok: boolean;
  /** Requests made (0 when dropped). */
  attempts: number;
  /** Why it failed, as the server said it (or the network error); empty when stored. */
  reason: string;
}

/**
 * The Authorization header for a token or a basic-auth file ("user:password"
 * on its first line). The secret is read here, once, and never written to a
 * log or an error message.
 */
export function stowAuthorization(credentials: { token?: string; basicAuthFile?: string }): string | undefined {
  if (credentials.token && credentials.basicAuthFile) throw new Error("--stow-token and --stow-basic-auth-file: give one of them");
  if (credentials.token) return `Bearer ${credentials.token}`;
  if (!credentials.basicAuthFile) return undefined;
  let line: string;
  try {
    line = readFileSync(credentials.basicAuthFile, "utf8").split(/\r?\n/)[0].trim();
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new Error(`--stow-basic-auth-file ${credentials.basicAuthFile}: cannot read the file (${reason})`);
  }
  if (!/^[^:\s]+:.+$/.test(line)) throw new Error(`--stow-basic-auth-file ${credentials.basicAuthFile}: the first line must be user:password`);
  return `Basic ${Buffer.from(line, "utf8").toString("base64")}`;
}

/** A failed attempt; `retriable` when another attempt may succeed. */
class StowFailure extends Error {
  constructor(
    readonly status: string,
    readonly reason: string,
    readonly retriable: boolean,
  ) {
    super(`${status}: ${reason}`);
  }
}

const isRetriableStatus = (code: number) => code === 408 || code === 429 || code >= 500;

/** Failure Reason (0008,1197) codes a store answer may carry (PS3.18 Table 10.5.3-2, PS3.4 Annex GG). */
const FAILURE_REASONS: Record<number, string> = {
  0x0110: "processing failure",
  0x0112: "no such object instance",
  0x0122: "SOP class not supported",
  0x0124: "not authorized",
  0xa700: "out of resources",
  0xa900: "data set does not match SOP class",
  0xc000: "cannot understand",
  0xc122: "referenced transfer syntax not supported",
};

/** A Failure Reason as the standard writes it: hexadecimal, with its meaning where known. */
function failureReason(code: unknown): string {
  const number = Number(code);
  if (!Number.isInteger(number)) return `FailureReason ${String(code)}`;
  const hex = `0x${number.toString(16).toUpperCase().padStart(4, "0")}`;
  return `FailureReason ${hex}${FAILURE_REASONS[number] ? ` (${FAILURE_REASONS[number]})` : ""}`;
}

/** What the server said, briefly: a DICOM JSON FailureReason, an Orthanc error message, or the text itself. */
function reasonOf(body: string): string {
  try {
    const json = JSON.parse(body) as Record<string, unknown>;
    const failed = (json["00081198"] as { Value?: Record<string, { Value?: unknown[] }>[] } | undefined)?.Value?.[0];
    const failure = failed?.["00081197"]?.Value?.[0];
    if (failure !== undefined) return failureReason(failure);
    const message = [json.Message, json.Details, json.HttpError].filter((part) => typeof part === "string" && part !== "");
    if (message.length > 0) return message.join(": ");
  } catch {
    // not JSON: the text below
  }
  return body.replace(/\s+/g, " ").trim().slice(0, 300);
}

/** Why a DICOM JSON store response lists the instance in its Failed SOP Sequence (PS3.18 Table 10.5.3-1), if it does. */
function failedInResponse(body: string): string | undefined {
  try {
    const failed = (JSON.parse(body) as Record<string, { Value?: unknown[] } | undefined>)["00081198"];
    return failed?.Value?.length ? reasonOf(body) : undefined;
  } catch {
    return undefined;
  }
}

/** Sends and re-sends Part-10 instances to one STOW-RS endpoint; see the module comment. */
export class StowSender {
  private readonly options: StowOptions & { scheduler: SchedulerLike };
  private readonly queue = new Subject<{ instance: Uint8Array; label: string }>();
  private readonly subscription: Subscription;
  private pendingBytes = 0;
  private pending = 0;
  private settled: (() => void)[] = [];

  constructor(
    options: Partial<StowOptions> & Pick<StowOptions, "url">,
    private readonly report: (outcome: StowOutcome) => void,
  ) {
    this.options = { ...DEFAULT_STOW_OPTIONS, scheduler: asyncScheduler, ...options };
    this.subscription = this.queue
      .pipe(
        mergeMap(
          ({ instance, label }) => this.send(instance, label).pipe(map((outcome) => ({ outcome, bytes: instance.byteLength }))),
          this.options.concurrency,
        ),
      )
      .subscribe(({ outcome, bytes }) => this.settle(outcome, bytes));
  }

  /** Queues one instance; never throws and never waits. `label` names it in the outcome (no patient data). */
  store(instance: Uint8Array, label: string): void {
    if (this.pendingBytes + instance.byteLength > this.options.maxPendingBytes) {
      this.report({ label, status: "dropped", ok: false, attempts: 0, reason: `more than ${this.options.maxPendingBytes} bytes waiting to be stored; the PACS is too slow or unreachable` });
      return;
    }
    this.pendingBytes += instance.byteLength;
    this.pending++;
    this.queue.next({ instance, label });
  }

  /** Resolves once every instance queued so far is stored or has failed. */
  flush(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.settled.push(resolve));
  }

  /** Stops sending; instances still queued are not sent. */
  close(): void {
    this.subscription.unsubscribe();
  }

  private settle(outcome: StowOutcome, bytes: number): void {
    this.pendingBytes -= bytes;
    this.pending--;
    this.report(outcome);
    if (this.pending === 0) for (const resolve of this.settled.splice(0)) resolve();
  }

  private send(instance: Uint8Array, label: string): Observable<StowOutcome> {
    const { retries, backoffMs, scheduler } = this.options;
    let attempts = 0;
    const boundary = `medsynth-${randomBytes(12).toString("hex")}`;
    const head = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, "latin1");
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`, "latin1");
    const body = Buffer.concat([head, instance, tail]);
    return defer(() => {
      attempts++;
      return this.post(body, boundary);
    }).pipe(
      retry({
        count: retries,
        delay: (error: StowFailure, retryCount) =>
          error.retriable ? timer(backoffMs * 2 ** (retryCount - 1), scheduler) : throwError(() => error),
      }),
      map((status): StowOutcome => ({ label, status, ok: true, attempts, reason: "" })),
      catchError((error: StowFailure) => of({ label, status: error.status, ok: false, attempts, reason: error.reason })),
    );
  }

  /** One POST, as an Observable of the HTTP status it succeeded with ("200", "202"): unsubscribing (the timeout, close()) aborts it. */
  private post(body: Buffer, boundary: string): Observable<string> {
    const { url, authorization, timeoutMs, scheduler } = this.options;
    return new Observable<string>((subscriber) => {
      const abort = new AbortController();
      const headers: Record<string, string> = {
        "content-type": `multipart/related; type="application/dicom"; boundary=${boundary}`,
        accept: "application/dicom+json",
      };
      if (authorization) headers.authorization = authorization;
      from(
        fetch(`${url.replace(/\/+$/, "")}/studies`, { method: "POST", headers, body, signal: abort.signal }).then(async (response) => {
          const text = await response.text();
          if (!response.ok) throw new StowFailure(String(response.status), reasonOf(text) || response.statusText, isRetriableStatus(response.status));
          const failed = failedInResponse(text);
          if (failed) throw new StowFailure("rejected", failed, false);
          return String(response.status);
        }),
      ).subscribe({
        next: (status) => subscriber.next(status),
        complete: () => subscriber.complete(),
        error: (error: unknown) => {
          if (error instanceof StowFailure) return subscriber.error(error);
          const cause = (error as { cause?: { code?: string; message?: string } }).cause;
          subscriber.error(new StowFailure("unreachable", cause?.code ?? cause?.message ?? (error as Error).message, true));
        },
      });
      return () => abort.abort();
    }).pipe(
      timeout({
        first: timeoutMs,
        scheduler,
        with: () => throwError(() => new StowFailure("timeout", `no answer within ${timeoutMs} ms`, true)),
      }),
    );
  }
}
