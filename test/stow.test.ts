// StowSender against loopback HTTP endpoints that fail on purpose (a busy
// PACS, a refusing one, one that never answers), its backoff and timeout
// driven in RxJS virtual time; and the credentials it sends. The stores into
// a real Orthanc are in test/integration/orthanc.test.ts.
import { describe, it, after, before } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { VirtualTimeScheduler } from "rxjs";
import { StowSender, stowAuthorization, type StowOutcome } from "../src/dicomweb/stow.js";
import { useTempDir } from "./helpers/temp-dir.js";
import { until } from "./helpers/until.js";
import { advanceTo } from "./helpers/virtual-time.js";

/** A loopback endpoint answering every POST with `answer`, keeping what it received. */
function endpoint(answer: (request: IncomingMessage, body: Buffer) => { status: number; body: string } | undefined) {
  const received: { headers: IncomingMessage["headers"]; url: string; body: Buffer }[] = [];
  let server: Server;
  before(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const body = Buffer.concat(chunks);
        received.push({ headers: request.headers, url: request.url!, body });
        const reply = answer(request, body);
        if (reply) response.writeHead(reply.status, { "content-type": "application/json" }).end(reply.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return {
    received,
    get url() {
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web/`;
    },
  };
}

const instance = (fill: number, bytes = 1000) => new Uint8Array(bytes).fill(fill);

describe("STOW-RS sender", () => {
  const busy = endpoint(() => ({ status: 503, body: JSON.stringify({ HttpError: "Service Unavailable", Message: "busy, try again" }) }));
  const refusing = endpoint(() => ({ status: 401, body: "" }));
  const silent = endpoint(() => undefined);
  const accepting = endpoint(() => ({ status: 202, body: JSON.stringify({ "00081199": { vr: "SQ", Value: [{}] } }) }));
  const mismatched = endpoint(() => ({
    status: 202,
    body: JSON.stringify({ "00081198": { vr: "SQ", Value: [{ "00081197": { vr: "US", Value: [0xa900] } }] } }),
  }));

  it("reports the status a store succeeded with, and a listed failure's reason in hexadecimal with its meaning", async () => {
    const outcomes: StowOutcome[] = [];
    for (const url of [accepting.url, mismatched.url]) {
      const sender = new StowSender({ url, retries: 0 }, (o) => outcomes.push(o));
      sender.store(instance(1), "slice-0");
      await sender.flush();
      sender.close();
    }
    assert.deepEqual(outcomes, [
      { label: "slice-0", status: "202", ok: true, attempts: 1, reason: "" },
      { label: "slice-0", status: "rejected", ok: false, attempts: 1, reason: "FailureReason 0xA900 (data set does not match SOP class)" },
    ]);
  });

  it("posts multipart/related; type=application/dicom to <url>/studies with the credentials, the same bytes on every retry, backing off 1×, 2× in virtual time", async () => {
    const scheduler = new VirtualTimeScheduler();
    const outcomes: StowOutcome[] = [];
    const sender = new StowSender({ url: busy.url, authorization: "Bearer t0ken-for-the-pacs", retries: 2, backoffMs: 1000, scheduler }, (o) => outcomes.push(o));
    // The PACS gets a request before the sender has read its 503 and started the backoff: the clock moves only once that
    // timer is set (a VirtualAction's delay is the frame it is due at), or it would start late.
    const timerDueAt = (frame: number) => () => scheduler.actions.some((action) => action.delay === frame);
    sender.store(instance(7), "slice-3");
    await until(timerDueAt(1000), "the first attempt's 503 and the backoff it starts");
    assert.equal(busy.received.length, 1);
    advanceTo(scheduler, 999);
    // The retry is sent by the backoff timer: still pending at 999 ms means no retry has started.
    assert.ok(timerDueAt(1000)(), "the backoff timer is still pending at 999 ms");
    assert.equal(busy.received.length, 1, "no retry before the backoff");
    advanceTo(scheduler, 1000);
    await until(() => busy.received.length === 2, "the first retry, after 1000 ms");
    await until(timerDueAt(3000), "the first retry's 503 and the second backoff");
    advanceTo(scheduler, 2999);
    assert.ok(timerDueAt(3000)(), "the second backoff timer is still pending at 2999 ms");
    assert.equal(busy.received.length, 2, "the second backoff is twice the first");
    advanceTo(scheduler, 3000);
    await sender.flush();
    assert.equal(busy.received.length, 3);
    assert.deepEqual(outcomes, [{ label: "slice-3", status: "503", ok: false, attempts: 3, reason: "busy, try again: Service Unavailable" }]);
    const [first, ...retries] = busy.received;
    assert.equal(first.url, "/dicom-web/studies");
    assert.equal(first.headers.authorization, "Bearer t0ken-for-the-pacs");
    const boundary = /^multipart\/related; type="application\/dicom"; boundary=(\S+)$/.exec(first.headers["content-type"]!)?.[1];
    assert.ok(boundary, first.headers["content-type"]);
    assert.ok(first.body.subarray(0, 200).toString("latin1").startsWith(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`));
    assert.ok(first.body.toString("latin1").endsWith(`\r\n--${boundary}--\r\n`));
    assert.ok(first.body.includes(Buffer.from(instance(7))));
    for (const retry of retries) assert.ok(retry.body.equals(first.body), "a retry re-sends the same instance");
    sender.close();
  });

  it("does not retry a refusal (4xx), and names its status", async () => {
    const outcomes: StowOutcome[] = [];
    const sender = new StowSender({ url: refusing.url, retries: 3 }, (o) => outcomes.push(o));
    sender.store(instance(1), "a");
    sender.store(instance(2), "b");
    await sender.flush();
    assert.equal(refusing.received.length, 2);
    assert.deepEqual(outcomes.map((o) => [o.label, o.status, o.attempts, o.reason]).sort(), [["a", "401", 1, "Unauthorized"], ["b", "401", 1, "Unauthorized"]]);
    sender.close();
  });

  it("times a silent PACS out in virtual time, and drops instances past the byte bound instead of queueing them", async () => {
    const scheduler = new VirtualTimeScheduler();
    const outcomes: StowOutcome[] = [];
    const sender = new StowSender({ url: silent.url, retries: 0, timeoutMs: 5000, maxPendingBytes: 2500, scheduler }, (o) => outcomes.push(o));
    sender.store(instance(1), "a");
    sender.store(instance(2), "b");
    sender.store(instance(3), "c");
    assert.deepEqual(outcomes.map((o) => [o.label, o.status, o.attempts]), [["c", "dropped", 0]], "3000 bytes would pass the 2500-byte bound");
    await until(() => silent.received.length === 2, "both requests to arrive");
    advanceTo(scheduler, 5000);
    await sender.flush();
    assert.deepEqual(outcomes.slice(1).map((o) => [o.label, o.status, o.reason]).sort(), [["a", "timeout", "no answer within 5000 ms"], ["b", "timeout", "no answer within 5000 ms"]]);
    sender.close();
  });

  describe("credentials", () => {
    const dir = useTempDir("stow-auth");
    it("a token, or basic auth from a file's first line; never both, never a malformed file; the secret never in a message", () => {
      assert.equal(stowAuthorization({}), undefined);
      assert.equal(stowAuthorization({ token: "abc" }), "Bearer abc");
      const file = join(dir.path, "auth");
      writeFileSync(file, "pacs-user:s3cret:with-colon\nignored\n");
      assert.equal(stowAuthorization({ basicAuthFile: file }), `Basic ${Buffer.from("pacs-user:s3cret:with-colon").toString("base64")}`);
      assert.throws(() => stowAuthorization({ token: "abc", basicAuthFile: file }), /give one of them/);
      writeFileSync(file, "s3cret-without-user\n");
      assert.throws(() => stowAuthorization({ basicAuthFile: file }), (error: Error) => /first line must be user:password/.test(error.message) && !error.message.includes("s3cret"));
      assert.throws(() => stowAuthorization({ basicAuthFile: join(dir.path, "missing") }), /cannot read the file \(ENOENT\)/);
    });
  });
});
