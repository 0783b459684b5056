/**
 * Resource limits of the gRPC server: message size, concurrent streams (over
 * all callers and per caller), idle streams, keepalive and connection age.
 * Each violation ends the call with a status whose message names the limit
 * and its flag.
 */
import { ServerInterceptingCall, status, type ServerInterceptor, type ServerOptions } from "@grpc/grpc-js";
import { asyncScheduler, debounceTime, Subject, take, type Observable, type SchedulerLike, type Subscription } from "rxjs";
import { MAX_MESSAGE_BYTES } from "../contract/limits.js";

/** Field names match the server config keys (flag --max-streams = maxStreams). */
export interface LimitsOptions {
  /**
   * Largest message received or sent, bytes (by default the contract's
   * MAX_MESSAGE_BYTES: a 4096² float32 slice and its reference). Larger
   * messages fail with RESOURCE_EXHAUSTED (from grpc-js).
   */
  maxMessageBytes: number;
  /** Calls open at once over all callers; past it RESOURCE_EXHAUSTED. */
  maxStreams: number;
  /** Calls open at once from one client IP address; past it RESOURCE_EXHAUSTED. */
  maxStreamsPerPeer: number;
  /**
   * A streaming call with no message received or sent for this long ends with
   * DEADLINE_EXCEEDED, releasing its slot (0 = never).
   */
  streamIdleTimeoutMs: number;
  /**
   * The server pings each connection this often, and drops it when the ping
   * is not answered within keepaliveTimeoutMs: streams of a vanished client
   * (cable pulled, host rebooted) end and free their slots instead of staying
   * open forever.
   */
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  /**
   * Connections are asked to close (GOAWAY) after this long, so clients
   * reconnect and re-resolve DNS and new replicas get streams; open streams
   * finish first (0 = never; the Kubernetes config sets 5 min).
   */
  maxConnectionAgeMs: number;
}

export const DEFAULT_LIMITS: LimitsOptions = {
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxStreams: 256,
  maxStreamsPerPeer: 32,
  streamIdleTimeoutMs: 300_000,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 20_000,
  maxConnectionAgeMs: 0,
};

/** grpc-js `new Server(options)` channel options for the limits (merge `interceptors` in). */
export function serverChannelOptions(limits: LimitsOptions): ServerOptions {
  return {
    "grpc.max_receive_message_length": limits.maxMessageBytes,
    "grpc.max_send_message_length": limits.maxMessageBytes,
    "grpc.keepalive_time_ms": limits.keepaliveTimeMs,
    "grpc.keepalive_timeout_ms": limits.keepaliveTimeoutMs,
    // No grace limit: an aged connection's open streams run to their end.
    ...(limits.maxConnectionAgeMs > 0 ? { "grpc.max_connection_age_ms": limits.maxConnectionAgeMs } : {}),
  };
}

/** Health probes and reflection are never limited: a busy server must still answer its probes. */
const isInfrastructureCall = (path: string): boolean =>
  path.startsWith("/grpc.health.v1.") || path.startsWith("/grpc.reflection.");

/** Concurrent calls over all callers and per client IP, shared by every port. */
export interface CallSlots {
  /** A slot for a call from `peer`, released by the function returned; or why none is free. */
  take(peer: string): { release: () => void } | { refused: string };
  /** Calls holding a slot now, over all callers. */
  readonly active: number;
}

/** Counts open calls overall and per client IP; a call past either limit is refused, naming the limit and its flag. */
export function callSlots(limits: Pick<LimitsOptions, "maxStreams" | "maxStreamsPerPeer">): CallSlots {
  let active = 0;
  const perPeer = new Map<string, number>();
  return {
    take(peer) {
      if (active >= limits.maxStreams) {
        return { refused: `server at its limit of ${limits.maxStreams} concurrent calls (--max-streams); retry later or on another replica` };
      }
      if ((perPeer.get(peer) ?? 0) >= limits.maxStreamsPerPeer) {
        return {
          refused: `client ${peer} at its limit of ${limits.maxStreamsPerPeer} concurrent calls (--max-streams-per-peer); close finished streams or send more slices per stream`,
        };
      }
      active++;
      perPeer.set(peer, (perPeer.get(peer) ?? 0) + 1);
      let held = true;
      return {
        release: () => {
          if (!held) return;
          held = false;
          active--;
          const left = (perPeer.get(peer) ?? 1) - 1;
          if (left === 0) perPeer.delete(peer);
          else perPeer.set(peer, left);
        },
      };
    },
    get active() {
      return active;
    },
  };
}

/**
 * Emits once, `idleMs` after the last `activity` (counting from the first):
 * each activity restarts the wait.
 */
function idleAfter(activity: Observable<unknown>, idleMs: number, scheduler: SchedulerLike = asyncScheduler): Observable<unknown> {
  return activity.pipe(debounceTime(idleMs, scheduler), take(1));
}

/**
 * grpc-js server interceptor (install after authentication): a call past a
 * limit of `slots` ends with RESOURCE_EXHAUSTED before its handler runs.
 * Streaming calls idle for `streamIdleTimeoutMs` (on `scheduler`'s clock)
 * end with DEADLINE_EXCEEDED; the handler sees them cancelled. Health probes
 * and reflection are neither counted nor timed.
 */
export function streamLimiter(
  slots: CallSlots,
  limits: Pick<LimitsOptions, "streamIdleTimeoutMs">,
  scheduler: SchedulerLike = asyncScheduler,
): ServerInterceptor {
  return (method, call) => {
    if (isInfrastructureCall(method.path)) return new ServerInterceptingCall(call);
    const peer = call.getConnectionInfo().remoteAddress ?? "unknown";
    const timed = (method.requestStream || method.responseStream) && limits.streamIdleTimeoutMs > 0;
    const activity = new Subject<void>();
    let held: { release: () => void } | undefined;
    let idle: Subscription | undefined;

    const release = () => {
      idle?.unsubscribe();
      held?.release();
      held = undefined;
    };
    const touch = () => {
      if (held) activity.next();
    };

    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const slot = slots.take(peer);
            if ("refused" in slot) return call.sendStatus({ code: status.RESOURCE_EXHAUSTED, details: slot.refused });
            held = slot;
            if (timed) {
              idle = idleAfter(activity, limits.streamIdleTimeoutMs, scheduler).subscribe(() => {
                release();
                call.sendStatus({
                  code: status.DEADLINE_EXCEEDED,
                  details: `stream idle for ${limits.streamIdleTimeoutMs} ms (nothing sent or answered); the server closes idle streams (--stream-idle-timeout-ms)`,
                });
              });
            }
            touch();
            pass(metadata);
          },
          onReceiveMessage: (message, pass) => {
            touch();
            pass(message);
          },
          onCancel: release,
        }),
      sendMessage: (message, pass) => {
        touch();
        pass(message);
      },
      sendStatus: (finalStatus, pass) => {
        release();
        pass(finalStatus);
      },
    });
  };
}
