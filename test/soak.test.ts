// A soak: 3,000 slices with references through a real server (tiny models,
// loopback), four streams at once; after the warm-up the process's RSS
// stays flat. The server runs in this process, so what is measured is the
// server with its client. (Run 10,000 slices long, RSS levels off after
// about 2,000 and heap use stays flat: the growth before is the allocators
// of the worker threads finding their working size.)
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isSliceError } from "../src/contract/slice-errors.js";
import { ctImage, mrImage, useTestServer } from "./helpers/service.js";

const STREAMS = 4;
const PER_STREAM = 750;
const SIDE = 128;
/** Slices answered before the baseline is taken: every pool, buffer and arena near its working size. */
const WARM_UP = 1000;
const MiB = 1024 * 1024;
/** RSS may wander this much above the warmed-up peak (GC timing); one leaked 64 KiB message per answer would add ~64 MiB. */
const TOLERANCE = 48 * MiB;

describe("soak", () => {
  const served = useTestServer({ workers: 2, maxBatch: 8, maxDelayMs: 2 });

  test(`${STREAMS * PER_STREAM} slices with references: all answered, RSS flat after the warm-up`, async () => {
    const samples: { answered: number; rss: number }[] = [];
    let answered = 0;
    const image = mrImage(SIDE, SIDE);
    const reference = ctImage(SIDE, SIDE);
    const run = async () => {
      const slices = Array.from({ length: PER_STREAM }, (_, i) => ({ index: BigInt(i), image, reference }));
      let failed = 0;
      for await (const answer of served.library.translate({ direction: "mr2ct", foregroundMetrics: true }, slices)) {
        if (isSliceError(answer)) failed++;
        if (++answered % 50 === 0) samples.push({ answered, rss: process.memoryUsage().rss });
      }
      return failed;
    };
    const failures = await Promise.all(Array.from({ length: STREAMS }, run));
    assert.deepEqual(failures, Array(STREAMS).fill(0));
    assert.equal(answered, STREAMS * PER_STREAM);
    assert.equal(served.server.inflightBytes, 0);

    const peak = (from: number, to: number) => Math.max(...samples.filter((s) => s.answered > from && s.answered <= to).map((s) => s.rss));
    const warmed = peak(WARM_UP, answered - WARM_UP);
    const last = peak(answered - WARM_UP, answered);
    const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;
    assert.ok(
      last <= warmed + TOLERANCE,
      `RSS grew from ${mib(warmed)} (slices ${WARM_UP}-${answered - WARM_UP}) to ${mib(last)} (the last ${WARM_UP}); samples: ${samples.map((s) => mib(s.rss)).join(" ")}`,
    );
  });
});
