import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isSliceError } from "../src/client/client.js";
import { Encoding } from "../src/gen/medsynth/v1/translator_pb.js";
import { readCsv, runCli } from "./helpers/cli.js";
import { useTestServer } from "./helpers/service.js";
import { useTempDir } from "./helpers/temp-dir.js";

const DATA = "models/testdata";
const METRICS = ["psnr", "ssim", "uqi", "vif", "mae"] as const;

describe("medsynth eval on models/testdata", () => {
  // One slice per batch, so the test's own answers are computed exactly as eval's were.
  const served = useTestServer({ maxBatch: 1 });
  const out = useTempDir("eval");

  it("prints and writes the per-direction tables of mean ± std, from the service's own Quality", async () => {
    const run = await runCli([
      "eval", "--data", DATA, "--subjects", "subject-101", "--models", "tiny-mr2ct,tiny-ct2mr", "--target", served.server.address, "--out", out.path,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /MR → CT\nModel\s+Slices\s+PSNR \(dB\)\s+SSIM\s+UQI\s+VIF\s+MAE \(HU\)\n/);
    assert.match(run.stdout, /CT → MR\nModel\s+Slices\s+PSNR \(dB\)\s+SSIM\s+UQI\s+VIF\n/);

    const report = JSON.parse(readFileSync(join(out.path, "eval.json"), "utf8"));
    assert.deepEqual(report.evaluations.map((e: { model: string; direction: string }) => [e.model, e.direction]), [
      ["tiny-mr2ct", "mr2ct"],
      ["tiny-ct2mr", "ct2mr"],
    ]);

    // Per-slice values are what the service answers for the same pairs.
    const index = JSON.parse(readFileSync(join(DATA, "index.json"), "utf8"));
    const subject = index.subjects.find((s: { id: string }) => s.id === "subject-101");
    const count = subject.slices.length;
    assert.match(run.stdout, new RegExp(`\\ntiny-mr2ct\\s+${count}\\s+-?\\d+\\.\\d\\d ± \\d+\\.\\d\\d\\s+`));
    const png = (modality: "ct" | "mr", path: string) => ({
      encoding: Encoding.PNG,
      data: readFileSync(join(DATA, path)),
      rescaleSlope: index[modality].rescale_slope,
      rescaleIntercept: index[modality].rescale_intercept,
    });
    const slices = subject.slices.map((s: { mr: string; ct: string }, n: number) => ({ index: BigInt(n), image: png("mr", s.mr), reference: png("ct", s.ct) }));
    const mr2ct = report.evaluations[0];
    let n = 0;
    for await (const answer of served.library.translate({ direction: "mr2ct", model: "tiny-mr2ct" }, slices)) {
      assert.ok(!isSliceError(answer));
      for (const metric of METRICS) assert.equal(mr2ct.perSlice[n].quality[metric], answer.quality![metric]);
      n++;
    }
    assert.equal(n, count);

    // Summaries: mean and population standard deviation of those values, in JSON, CSV and Markdown.
    const csvRows = readCsv(join(out.path, "eval.csv"));
    const markdown = readFileSync(join(out.path, "eval.md"), "utf8");
    for (const [e, evaluation] of report.evaluations.entries()) {
      assert.equal(evaluation.slices, count);
      assert.deepEqual(evaluation.failed, []);
      assert.equal(csvRows[e].model, evaluation.model);
      for (const metric of METRICS) {
        const values: number[] = evaluation.perSlice.map((s: { quality: Record<string, number> }) => s.quality[metric]);
        const mean = values.reduce((a, b) => a + b, 0) / values.length;
        const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
        assert.ok(Math.abs(evaluation.metrics[metric].mean - mean) <= 1e-12 * Math.max(1, Math.abs(mean)), `${evaluation.model} ${metric} mean`);
        assert.ok(Math.abs(evaluation.metrics[metric].std - std) <= 1e-12 * Math.max(1, std), `${evaluation.model} ${metric} std`);
        assert.equal(Number(csvRows[e][`${metric}_mean`]), evaluation.metrics[metric].mean);
        assert.equal(Number(csvRows[e][`${metric}_std`]), evaluation.metrics[metric].std);
      }
      const psnr = evaluation.metrics.psnr;
      assert.ok(markdown.includes(`| ${evaluation.model} | ${count} | ${psnr.mean.toFixed(2)} ± ${psnr.std.toFixed(2)} |`), markdown);
    }
    assert.match(markdown, /## MR → CT\n\n\| Model \| Slices \| PSNR \(dB\) \| SSIM \| UQI \| VIF \| MAE \(HU\) \|/);
    assert.match(markdown, /## CT → MR\n\n\| Model \| Slices \| PSNR \(dB\) \| SSIM \| UQI \| VIF \|\n/);
  });

  it("names the served models when asked for one that is not", async () => {
    const run = await runCli(["eval", "--data", DATA, "--models", "nope", "--target", served.server.address, "--out", out.path]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--models: nope not served; available: .*tiny-mr2ct/);
  });
});
