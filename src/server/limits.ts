/**
 * Resource limits of the gRPC server: message size, concurrent streams (over
 * all callers and per caller), idle streams, idle connections, keepalive and
 * connection age. Each violation ends the call with a status whose message
 * names the limit and its flag.
 */
import { ServerInterceptingCall, status, type ServerInterceptor, type ServerOptions } from "@grpc/grpc-js";
import { asyncScheduler, NEVER, Subject, switchMap, take, timer, type Observable, type SchedulerLike, type Subscription } from "rxjs";
import { MAX_MESSAGE_BYTES } from "../contract/limits.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { methodPath, TRANSLATE_PATH } from "../contract/service.js";

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
   * A streaming call idle this long ends with DEADLINE_EXCEEDED, releasing
   * its slot (0 = never). A Translate stream is idle only while the client
   * owes the server a message (every slice it sent is answered and it has
   * not half-closed): time the server spends on its slices never counts.
   * Other streams (health Watch, reflection) are idle while nothing is sent
   * either way.
   */
  streamIdleTimeoutMs: number;
  /**
   * A connection with no call open for this long is closed (GOAWAY; grpc-js
   * `grpc.max_connection_idle_ms`): a connection that never sends a request
   * is closed this long after its HTTP/2 handshake (0 = never).
   */
  maxConnectionIdleMs: number;
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
  // Clients reconnect transparently on their next call; a connection opened and left unused holds memory for nothing.
  maxConnectionIdleMs: 30_000,
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
    ...(limits.maxConnectionIdleMs > 0 ? { "grpc.max_connection_idle_ms": limits.maxConnectionIdleMs } : {}),
  };
}

/** Health checks are never limited: a busy server must still answer its probes (Watch streams are limited like any other). */
const HEALTH_CHECK = methodPath(Health.method.check);

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
 * Emits once, `idleMs` after the last `idle` value that is true, unless a
 * false one (or another true one, which restarts the wait) came in between.
 */
function idleAfter(idle: Observable<boolean>, idleMs: number, scheduler: SchedulerLike = asyncScheduler): Observable<unknown> {
  return idle.pipe(
    switchMap((waiting) => (waiting ? timer(idleMs, scheduler) : NEVER)),
    take(1),
  );
}

/**
 * grpc-js server interceptor (install after authentication): a call past a
 * limit of `slots` ends with RESOURCE_EXHAUSTED before its handler runs.
 * Streaming calls idle for `streamIdleTimeoutMs` (on `scheduler`'s clock;
 * see LimitsOptions for what idle means) end with DEADLINE_EXCEEDED; the
 * handler sees them cancelled. Health checks are neither counted nor timed.
 */
export function streamLimiter(
  slots: CallSlots,
  limits: Pick<LimitsOptions, "streamIdleTimeoutMs">,
  scheduler: SchedulerLike = asyncScheduler,
): ServerInterceptor {
  return (method, call) => {
    if (method.path === HEALTH_CHECK) return new ServerInterceptingCall(call);
    const peer = call.getConnectionInfo().remoteAddress ?? "unknown";
    const timed = (method.requestStream || method.responseStream) && limits.streamIdleTimeoutMs > 0;
    const owed = method.path === TRANSLATE_PATH;
    // Translate: whether the client owes a message now. Others: true at every message either way.
    const idle = new Subject<boolean>();
    const flow = { received: 0, sent: 0, halfClosed: false };
    let held: { release: () => void } | undefined;
    let timeout: Subscription | undefined;

    const release = () => {
      timeout?.unsubscribe();
      held?.release();
      held = undefined;
    };
    const touch = () => {
      if (!held) return;
      // Every message after StreamOptions is a slice owed one answer.
      idle.next(owed ? !flow.halfClosed && flow.sent >= flow.received - 1 : true);
    };
    const details = owed
      ? `stream idle for ${limits.streamIdleTimeoutMs} ms: every slice was answered and no message came; the server closes idle streams (--stream-idle-timeout-ms)`
      : `stream idle for ${limits.streamIdleTimeoutMs} ms (nothing sent or answered); the server closes idle streams (--stream-idle-timeout-ms)`;

    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const slot = slots.take(peer);
            if ("refused" in slot) return call.sendStatus({ code: status.RESOURCE_EXHAUSTED, details: slot.refused });
            held = slot;
            if (timed) {
              timeout = idleAfter(idle, limits.streamIdleTimeoutMs, scheduler).subscribe(() => {
                release();
                call.sendStatus({ code: status.DEADLINE_EXCEEDED, details });
              });
            }
            touch();
            pass(metadata);
          },
          onReceiveMessage: (message, pass) => {
            flow.received++;
            touch();
            pass(message);
          },
          onReceiveHalfClose: (pass) => {
            flow.halfClosed = true;
            touch();
            pass();
          },
          onCancel: release,
        }),
      sendMessage: (message, pass) => {
        flow.sent++;
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
