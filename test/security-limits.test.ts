// Limits on the real server (tiny fixture models), driven by a real gRPC
// client on loopback: concurrent streams overall and per peer, idle streams,
// message size; and the channel options the limits become.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { status } from "@grpc/grpc-js";
import { VirtualTimeScheduler } from "rxjs";
import { Direction, PixelType, type TranslateRequest, type TranslateResponse } from "../src/gen/medsynth/v1/translator_pb.js";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../src/gen/grpc/health/v1/health_pb.js";
import { checkHealth } from "../src/cli/healthcheck.js";
import { DEFAULT_LIMITS, serverChannelOptions } from "../src/server/limits.js";
import { collect, mrImage, options, rawImage, sliceRequest, useTestServer, type TranslatorTestClient } from "./helpers/service.js";
import { until } from "./helpers/until.js";
import { advanceTo } from "./helpers/virtual-time.js";
import type { ClientDuplexStream } from "@grpc/grpc-js";

type Stream = ClientDuplexStream<TranslateRequest, TranslateResponse>;

/** Opens a Translate stream and waits for the answer to its first slice: the server admitted it. */
async function admittedStream(client: TranslatorTestClient): Promise<Stream> {
  const call = client.translate();
  call.write(options(Direction.MR_TO_CT));
  call.write(sliceRequest(0, mrImage()));
  const [answer] = (await once(call, "data")) as [TranslateResponse];
  assert.equal(answer.kind.case, "result");
  return call;
}

/** Half-closes a stream and waits until the server has ended it. */
async function finish(call: Stream): Promise<void> {
  const ended = collect(call);
  call.end();
  const { error } = await ended;
  assert.equal(error, undefined, `stream ended with ${error?.details}`);
}

describe("concurrent stream limits", () => {
  const served = useTestServer({ maxStreams: 3, maxStreamsPerPeer: 2, streamIdleTimeoutMs: 0 });

  it("refuses a peer's stream past --max-streams-per-peer with RESOURCE_EXHAUSTED, and admits it again once one ends", async () => {
    const first = await admittedStream(served.client);
    const second = await admittedStream(served.client);
    const refused = await collect(served.client.translate());
    assert.equal(refused.error?.code, status.RESOURCE_EXHAUSTED);
    assert.match(refused.error.details, /client 127\.0\.0\.1 at its limit of 2 concurrent calls \(--max-streams-per-peer\)/);
    // Probes are never limited.
    assert.equal(await checkHealth(served.server.address), ServingStatus.SERVING);

    await finish(first);
    const third = await admittedStream(served.client);
    await finish(second);
    await finish(third);
  });
});

describe("overall limit, idle streams and message size", () => {
  const idleMs = 500;
  const served = useTestServer({ maxStreams: 1, maxStreamsPerPeer: 4, streamIdleTimeoutMs: idleMs, maxMessageBytes: 64 * 1024 });

  it("refuses a stream past --max-streams, and ends an idle stream with DEADLINE_EXCEEDED, freeing its slot", async () => {
    const open = await admittedStream(served.client);
    const idleSince = Date.now();
    const ended = collect(open);
    const refused = await collect(served.client.translate());
    assert.equal(refused.error?.code, status.RESOURCE_EXHAUSTED);
    assert.match(refused.error.details, /server at its limit of 1 concurrent calls \(--max-streams\)/);

    const { error } = await ended;
    assert.equal(error?.code, status.DEADLINE_EXCEEDED);
    assert.match(error.details, new RegExp(`stream idle for ${idleMs} ms: every slice was answered and no message came; .*--stream-idle-timeout-ms`));
    assert.ok(Date.now() - idleSince >= idleMs - 20, "not before the idle timeout");
    // The service saw the stream end (its session is gone), and the slot is free again.
    await until(() => served.server.openStreams === 0, "the service to see the stream end", 2000);
    assert.equal(served.server.openStreams, 0);
    await finish(await admittedStream(served.client));
  });

  it("fails a stream whose message exceeds --max-message-bytes with RESOURCE_EXHAUSTED", async () => {
    const side = 160; // 160² float32 = 100 KiB > 64 KiB
    const big = rawImage(new Array<number>(side * side).fill(500), side, side, PixelType.FLOAT32);
    const call = served.client.translate();
    const ended = collect(call);
    call.write(options(Direction.MR_TO_CT));
    call.write(sliceRequest(0, big));
    const { error } = await ended;
    assert.equal(error?.code, status.RESOURCE_EXHAUSTED);
    assert.match(error.details, /larger than max/);
    // The server goes on serving.
    await finish(await admittedStream(served.client));
  });
});

describe("idle streams in virtual time", () => {
  const idleMs = 500;
  const scheduler = new VirtualTimeScheduler();
  // No batching delay: in virtual time a slice would otherwise wait for the clock to move.
  const served = useTestServer({ streamIdleTimeoutMs: idleMs, maxDelayMs: 0 }, { scheduler });

  /** A stream whose answers are counted; `answers` ends with the stream. */
  function stream() {
    const call = served.client.translate();
    const state = { call, answered: 0, answers: collect(call) };
    call.on("data", () => state.answered++);
    call.write(options(Direction.MR_TO_CT));
    return state;
  }

  it("keeps a stream that sends slices more often than the idle timeout", async () => {
    const opened = stream();
    const { call, answers } = opened;
    const slices = 6;
    for (let index = 0; index < slices; index++) {
      // Silent for just under the timeout, then the next slice.
      advanceTo(scheduler, scheduler.now() + idleMs - 1);
      call.write(sliceRequest(index, mrImage()));
      await until(() => opened.answered === index + 1, `the answer to slice ${index}`);
    }
    call.end();
    const { responses, error } = await answers;
    assert.equal(error, undefined);
    assert.deepEqual(
      responses.map((r) => (r.kind.case === "result" ? Number(r.kind.value.index) : -1)),
      [...Array(slices).keys()],
    );
  });

  it("ends a stream once nothing was sent or answered for the idle timeout", async () => {
    const { call, answers } = stream();
    call.write(sliceRequest(0, mrImage()));
    const [answer] = (await once(call, "data")) as [TranslateResponse];
    assert.equal(answer.kind.case, "result");
    advanceTo(scheduler, scheduler.now() + idleMs);
    const { error } = await answers;
    assert.equal(error?.code, status.DEADLINE_EXCEEDED);
    assert.match(error.details, new RegExp(`stream idle for ${idleMs} ms: every slice was answered and no message came; .*--stream-idle-timeout-ms`));
    await until(() => served.server.openStreams === 0, "the service to see the stream end");
  });
});

describe("limits as grpc-js server options", () => {
  it("carry message size and keepalive, and connection age only when set", () => {
    const options = serverChannelOptions(DEFAULT_LIMITS);
    assert.ok(DEFAULT_LIMITS.maxMessageBytes >= 2 * 4096 * 4096 * 4, "a 4096² float32 slice plus its reference fits");
    assert.equal(options["grpc.max_receive_message_length"], DEFAULT_LIMITS.maxMessageBytes);
    assert.equal(options["grpc.max_send_message_length"], DEFAULT_LIMITS.maxMessageBytes);
    assert.equal(options["grpc.keepalive_time_ms"], DEFAULT_LIMITS.keepaliveTimeMs);
    assert.equal(options["grpc.keepalive_timeout_ms"], DEFAULT_LIMITS.keepaliveTimeoutMs);
    assert.equal("grpc.max_connection_age_ms" in options, false);
    assert.equal(serverChannelOptions({ ...DEFAULT_LIMITS, maxConnectionAgeMs: 300_000 })["grpc.max_connection_age_ms"], 300_000);
  });
});
