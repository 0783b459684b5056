import { test } from "node:test";
import assert from "node:assert/strict";
import type { Raster } from "../src/imaging/raster.js";
import { computeQuality, QualityPool, type TargetWindow } from "../src/quality/index.js";
import { until } from "./helpers/until.js";
import { allEnded, killFirstWorker } from "./helpers/workers.js";
import { readF32 } from "./quality-fixtures.js";

const CT: TargetWindow = { window: "fixed", low: -1024, high: 3071 };
const MR: TargetWindow = { window: "percentile", low: 0.5, high: 99.5 };

const fixture = (file: string): Raster => readF32(`ct_hu/${file}`, 256, 256);

const copy = (r: Raster): Raster => ({ width: r.width, height: r.height, data: r.data.slice() });

test("concurrent requests on a pool equal the in-thread results, in any completion order", async () => {
  const pool = new QualityPool({ workers: 2 });
  const spawned = pool.workers.threads;
  try {
    assert.equal(pool.workers.size, 2);
    assert.ok(spawned.length === 2 && !spawned.some((worker) => worker.threadId === -1), "two worker threads run");
    const reference = fixture("ref.f32");
    const distorted = fixture("img.f32");
    const cases = [0, 1, 2, 3, 4, 5].map((k) => ({
      synthetic: { ...distorted, data: distorted.data.map((v, i) => v + k * 20 * Math.sin(i)) },
      target: k % 2 === 0 ? CT : MR,
      foreground: k % 3 === 0,
    }));
    const expected = cases.map((c) => computeQuality(copy(c.synthetic), copy(reference), c.target, { foreground: c.foreground }));
    await pool.workers.ready;
    const pending = cases.map((c) => pool.compute(copy(c.synthetic), copy(reference), c.target, { foreground: c.foreground }));
    assert.equal(pool.workers.queued, 4, "two run, four wait");
    const results = await Promise.all(pending);
    assert.equal(pool.workers.queued, 0);
    results.forEach((result, k) => {
      assert.deepEqual(result.quality, expected[k].quality, `case ${k}`);
      assert.deepEqual(result.foreground, expected[k].foreground, `case ${k} foreground`);
      assert.ok(result.computeMs > 0);
    });
    assert.notDeepEqual(results[0].quality, results[2].quality, "the cases differ");
  } finally {
    await pool.close();
  }
  await until(() => allEnded(spawned), "close() to end the worker threads");
});

test("the pool takes whole pixel buffers by transfer and copies views of larger buffers", async () => {
  const pool = new QualityPool({ workers: 1 });
  try {
    const reference = fixture("ref.f32");
    const owned = copy(fixture("img.f32"));
    const batch = new Float32Array(3 * 256 * 256);
    batch.set(fixture("img.f32").data, 256 * 256);
    const view: Raster = { width: 256, height: 256, data: batch.subarray(256 * 256, 2 * 256 * 256) };
    const [a, b] = await Promise.all([pool.compute(owned, copy(reference), CT), pool.compute(view, copy(reference), CT)]);
    assert.equal(owned.data.length, 0, "a whole buffer is transferred (detached here)");
    assert.equal(batch.length, 3 * 256 * 256, "a view into a batch tensor is copied, the batch stays usable");
    assert.deepEqual(a, { ...b, computeMs: a.computeMs });
  } finally {
    await pool.close();
  }
});

test("a failing request rejects alone; the pool keeps serving", async () => {
  const pool = new QualityPool({ workers: 1 });
  try {
    const reference = fixture("ref.f32");
    const wrongSize: Raster = { width: 128, height: 128, data: new Float32Array(128 * 128) };
    const [bad, good] = await Promise.allSettled([
      pool.compute(wrongSize, copy(reference), CT),
      pool.compute(fixture("img.f32"), copy(reference), CT),
    ]);
    assert.equal(bad.status, "rejected");
    assert.equal((bad as PromiseRejectedResult).reason.name, "RangeError");
    assert.match((bad as PromiseRejectedResult).reason.message, /128x128.*256x256/);
    assert.equal(good.status, "fulfilled");
    const after = await pool.compute(copy(reference), copy(reference), CT);
    assert.equal(after.quality.psnr, Infinity);
  } finally {
    await pool.close();
  }
});

test("close() rejects waiting requests and later ones", async () => {
  const pool = new QualityPool({ workers: 1 });
  const spawned = pool.workers.threads;
  const reference = fixture("ref.f32");
  const pending = [0, 1, 2].map(() => pool.compute(copy(reference), copy(reference), CT));
  const settled = Promise.allSettled(pending);
  await pool.close();
  const outcomes = await settled;
  assert.ok(outcomes.every((o) => o.status === "rejected"), "in flight and queued requests are rejected");
  await assert.rejects(pool.compute(copy(reference), copy(reference), CT), /closed/);
  assert.equal(spawned.length, 1);
  await until(() => allEnded(spawned), "close() to end the worker thread");
  assert.throws(() => new QualityPool({ workers: 0 }), RangeError);
});

test("a killed worker fails the request it held and is replaced; the pool serves on", async () => {
  const pool = new QualityPool({ workers: 1 });
  try {
    await pool.workers.ready;
    const reference = fixture("ref.f32");
    const victim = killFirstWorker(pool.workers);
    await assert.rejects(pool.compute(copy(reference), copy(reference), CT), { message: "QualityPool worker died: exit code 1" });
    assert.equal(pool.workers.size, 1);
    assert.notEqual(pool.workers.threads[0], victim, "a fresh worker took its place");
    assert.equal((await pool.compute(copy(reference), copy(reference), CT)).quality.psnr, Infinity);
  } finally {
    await pool.close();
  }
});

test("a worker whose WebAssembly memory grew past what it keeps for a large slice is replaced after answering; small slices keep it", async () => {
  const pool = new QualityPool({ workers: 1 });
  const crashes: unknown[] = [];
  pool.workers.crashes.subscribe((crash) => crashes.push(crash));
  try {
    await pool.workers.ready;
    const [first] = pool.workers.threads;
    const reference = fixture("ref.f32");
    await pool.compute(copy(reference), copy(reference), CT);
    assert.equal(pool.workers.threads[0], first, "256² fits in the memory a worker keeps");
    // 1600² needs about 77 MB of WebAssembly memory, more than RETAINED_MEMORY_BYTES: the grown memory would never shrink.
    const side = 1600;
    const large: Raster = { width: side, height: side, data: new Float32Array(side * side).map((_, i) => 100 * Math.sin(i / 1000)) };
    const report = await pool.compute(copy(large), copy(large), CT);
    assert.equal(report.quality.psnr, Infinity, "the large slice is answered");
    await until(() => pool.workers.threads[0] !== first, "the grown worker to be replaced");
    assert.equal((await pool.compute(copy(reference), copy(reference), CT)).quality.psnr, Infinity, "the successor serves");
    assert.deepEqual(crashes, [], "a retirement is not a crash");
  } finally {
    await pool.close();
  }
});
