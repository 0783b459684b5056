import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import { benchChart, niceAxis } from "../src/cli/chart.js";
import { evaluationTables, type ModelEvaluation } from "../src/cli/commands/eval.js";
import { csv, formatMeanStd, markdownTable, summarize, textTable } from "../src/cli/report.js";

describe("report writers", () => {
  it("writes CSV that quotes what needs quoting and keeps full double precision", () => {
    const text = csv(["name", "value"], [["a,b", 0.1 + 0.2], ['say "hi"', 1e-17], ["empty", undefined]]);
    assert.equal(text, 'name,value\n"a,b",0.30000000000000004\n"say ""hi""",1e-17\nempty,\n');
    assert.equal(Number(text.split("\n")[1].split(",").at(-1)), 0.1 + 0.2);
  });

  it("aligns text tables and escapes Markdown pipes", () => {
    const table = { columns: ["Model", "PSNR"], rows: [["a", "27.10 ± 1.00"], ["long|name", "3.00 ± 0.50"]] };
    assert.equal(textTable(table), "Model              PSNR\n---------  ------------\na          27.10 ± 1.00\nlong|name   3.00 ± 0.50\n");
    assert.equal(markdownTable(table), "| Model | PSNR |\n| :--- | ---: |\n| a | 27.10 ± 1.00 |\n| long\\|name | 3.00 ± 0.50 |\n");
  });

  it("summarises with the population standard deviation (NumPy's default)", () => {
    const s = summarize([2, 4, 4, 4, 5, 5, 7, 9]);
    assert.deepEqual(s, { n: 8, mean: 5, std: 2 });
    assert.equal(formatMeanStd(s, 2), "5.00 ± 2.00");
    assert.equal(formatMeanStd(summarize([]), 2), "n/a");
    assert.equal(formatMeanStd(summarize([Infinity, 30]), 2), "Infinity");
  });

  it("lays out evaluation tables per direction, with MAE only for CT targets", () => {
    const summary = (mean: number) => ({ n: 2, mean, std: 0.5 });
    const metrics = { psnr: summary(27), ssim: summary(0.9), uqi: summary(0.8), vif: summary(0.4), mae: summary(80) };
    const evaluation = (model: string, direction: "mr2ct" | "ct2mr"): ModelEvaluation => ({
      model, direction, slices: 2, failed: [], metrics, perSlice: [],
    });
    const tables = evaluationTables([evaluation("b", "ct2mr"), evaluation("a", "mr2ct")], "metrics");
    assert.deepEqual(tables.map((t) => t.title), ["MR → CT", "CT → MR"]);
    assert.deepEqual(tables[0].table.columns, ["Model", "Slices", "PSNR (dB)", "SSIM", "UQI", "VIF", "MAE (HU)"]);
    assert.deepEqual(tables[0].table.rows, [["a", "2", "27.00 ± 0.50", "0.9000 ± 0.5000", "0.8000 ± 0.5000", "0.4000 ± 0.5000", "80.0 ± 0.5"]]);
    assert.deepEqual(tables[1].table.columns, ["Model", "Slices", "PSNR (dB)", "SSIM", "UQI", "VIF"]);
    assert.deepEqual(evaluationTables([evaluation("a", "mr2ct")], "foreground"), []);
  });
});

describe("bench chart", () => {
  it("picks round axes", () => {
    assert.deepEqual(niceAxis(210.7), { top: 250, step: 50 });
    assert.deepEqual(niceAxis(51.6), { top: 60, step: 20 });
    assert.deepEqual(niceAxis(0.3), { top: 0.3, step: 0.1 });
    assert.deepEqual(niceAxis(0), { top: 1, step: 0.2 });
  });

  it("draws a latency line and a throughput bar per level, and the raw line; the SVG renders", async () => {
    const series = [
      { label: "1 stream", latencyCurve: [[0, 5], [50, 8], [99, 20], [100, 31]] as [number, number][], throughput: 80 },
      { label: "4 streams", latencyCurve: [[0, 9], [50, 14], [99, 45], [100, 60]] as [number, number][], throughput: 150 },
    ];
    const svg = benchChart("bench <test> & more", series, 200);
    assert.equal(svg.match(/<polyline /g)?.length, 2);
    assert.match(svg, /bench &#60;test&#62; &#38; more/);
    assert.match(svg, /raw ONNX Runtime 200\.0\/s/);
    assert.match(svg, />80\.0</);
    const rendered = await sharp(Buffer.from(svg)).png().toBuffer({ resolveWithObject: true });
    assert.equal(rendered.info.width, 970);
  });
});
