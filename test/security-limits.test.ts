// Limits on the real server (tiny fixture models), driven by a real gRPC
// client on loopback: concurrent streams overall and per peer (health Watch
// streams included), idle streams, idle connections, message size; and the
// channel options the limits become.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect } from "node:net";
import { create } from "@bufbuild/protobuf";
import { status, type ClientReadableStream } from "@grpc/grpc-js";
import { VirtualTimeScheduler } from "rxjs";
import { Direction, PixelType, type TranslateRequest, type TranslateResponse } from "../src/gen/medsynth/v1/translator_pb.js";
import {
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponse,
} from "../src/gen/grpc/health/v1/health_pb.js";
import { checkHealth } from "../src/cli/healthcheck.js";
import { DEFAULT_LIMITS, serverChannelOptions } from "../src/server/limits.js";
import { collect, healthClient, mrImage, options, rawImage, sliceRequest, useTestServer, type HealthTestClient, type TranslatorTestClient } from "./helpers/service.js";
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

/** A health Watch of the server as a whole, once its first status has come. */
async function watching(health: HealthTestClient): Promise<ClientReadableStream<HealthCheckResponse>> {
  const call = health.watch(create(HealthCheckRequestSchema, { service: "" }));
  // Its end (a cancel, a timeout) is what the caller asks about, if anything.
  call.on("error", () => undefined);
  const [first] = (await once(call, "data")) as [HealthCheckResponse];
  assert.equal(first.status, ServingStatus.SERVING);
  return call;
}

/** How a server-streaming call ended: its status. */
const ended = (call: ClientReadableStream<HealthCheckResponse>) =>
  new Promise<{ code: number; details: string }>((resolve) => call.on("error", resolve));

describe("health Watch streams", () => {
  const served = useTestServer({ maxStreams: 8, maxStreamsPerPeer: 2, streamIdleTimeoutMs: 0 });

  it("count against the stream limits per peer like any stream, while health checks never do", async () => {
    const health = healthClient(served.server.address);
    try {
      const watches = [await watching(health), await watching(health)];
      const third = ended(health.watch(create(HealthCheckRequestSchema, { service: "" })));
      const refused = await third;
      assert.equal(refused.code, status.RESOURCE_EXHAUSTED);
      assert.match(refused.details, /client 127\.0\.0\.1 at its limit of 2 concurrent calls \(--max-streams-per-peer\)/);
      const translate = await collect(served.client.translate());
      assert.equal(translate.error?.code, status.RESOURCE_EXHAUSTED, "Watch streams use up the peer's slots");
      assert.equal(await checkHealth(served.server.address), ServingStatus.SERVING, "a Check is answered all the same");
      for (const watch of watches) watch.cancel();
      // The server hears of the cancels a moment later.
      const admitted = () => admittedStream(served.client).then(finish).then(() => true, () => false);
      await until(admitted, "a stream to be admitted once the Watch streams are gone");
    } finally {
      health.close();
    }
  });
});

describe("idle timeouts in virtual time", () => {
  const idleMs = 500;
  const scheduler = new VirtualTimeScheduler();
  // A slice waits for a fuller batch for 10 s of virtual time: the server, not the client, holds it that long.
  const served = useTestServer({ streamIdleTimeoutMs: idleMs, maxDelayMs: 10_000, maxBatch: 8 }, { scheduler });

  it("end a health Watch after the idle timeout with nothing sent either way", async () => {
    const health = healthClient(served.server.address);
    try {
      const call = await watching(health);
      let settled = false;
      const end = ended(call).finally(() => (settled = true));
      const start = scheduler.now();
      advanceTo(scheduler, start + idleMs - 1);
      // Event-loop turns (each polls I/O) for an early end to arrive: a millisecond short, the Watch must still be open.
      for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(settled, false, "the Watch ended before its idle timeout");
      advanceTo(scheduler, start + idleMs);
      const { code, details } = await end;
      assert.equal(code, status.DEADLINE_EXCEEDED);
      assert.match(details, new RegExp(`^stream idle for ${idleMs} ms \\(nothing sent or answered\\)`));
    } finally {
      health.close();
    }
  });

  it("count only time in which the client owes a message, never the time the server holds its slices", async () => {
    const call = served.client.translate();
    const done = collect(call);
    let answered = 0;
    call.on("data", () => answered++);
    call.write(options(Direction.MR_TO_CT));
    call.write(sliceRequest(0, mrImage()));
    await until(() => served.server.queueDepth === 1, "the slice to be queued");
    const start = scheduler.now();
    // 20 idle timeouts while the slice waits for its batch: the stream stays.
    advanceTo(scheduler, start + 20 * idleMs);
    assert.equal(served.server.openStreams, 1, "not idle while the server holds a slice");
    advanceTo(scheduler, start + 10_000);
    await until(() => answered === 1, "the answer");
    // Now the client owes the next message: the timeout counts from the answer.
    const answeredAt = scheduler.now();
    advanceTo(scheduler, answeredAt + idleMs - 1);
    assert.equal(served.server.openStreams, 1);
    advanceTo(scheduler, answeredAt + idleMs);
    const { error } = await done;
    assert.equal(error?.code, status.DEADLINE_EXCEEDED);
    assert.match(error.details, new RegExp(`^stream idle for ${idleMs} ms: every slice was answered and no message came`));
  });
});

describe("idle connections", () => {
  const served = useTestServer({ maxConnectionIdleMs: 300 });

  it("close a connection that never sends a request once --max-connection-idle-ms passes (grpc-js grpc.max_connection_idle_ms)", async () => {
    const [host, port] = served.server.address.split(":");
    const socket = connect(Number(port), host);
    await once(socket, "connect");
    const openedAt = Date.now();
    let closed = false;
    socket.on("close", () => (closed = true));
    socket.on("error", () => undefined);
    socket.resume();
    await until(() => closed, "the server to close the silent connection", 10_000);
    assert.ok(Date.now() - openedAt >= 250, "not before the idle time");
  });
});

describe("limits as grpc-js server options", () => {
  it("carry message size, keepalive and connection idleness, and each of connection age and idleness only when set", () => {
    const options = serverChannelOptions(DEFAULT_LIMITS);
    assert.ok(DEFAULT_LIMITS.maxMessageBytes >= 2 * 4096 * 4096 * 4, "a 4096² float32 slice plus its reference fits");
    assert.equal(options["grpc.max_receive_message_length"], DEFAULT_LIMITS.maxMessageBytes);
    assert.equal(options["grpc.max_send_message_length"], DEFAULT_LIMITS.maxMessageBytes);
    assert.equal(options["grpc.keepalive_time_ms"], DEFAULT_LIMITS.keepaliveTimeMs);
    assert.equal(options["grpc.keepalive_timeout_ms"], DEFAULT_LIMITS.keepaliveTimeoutMs);
    assert.equal("grpc.max_connection_age_ms" in options, false);
    assert.equal(serverChannelOptions({ ...DEFAULT_LIMITS, maxConnectionAgeMs: 300_000 })["grpc.max_connection_age_ms"], 300_000);
    assert.equal(options["grpc.max_connection_idle_ms"], DEFAULT_LIMITS.maxConnectionIdleMs);
    assert.equal("grpc.max_connection_idle_ms" in serverChannelOptions({ ...DEFAULT_LIMITS, maxConnectionIdleMs: 0 }), false);
  });
});
