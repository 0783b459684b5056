import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import ort from "onnxruntime-node";
import sharp from "sharp";
import { loadModelSpecs } from "../src/inference/registry.js";
import { Direction } from "../src/gen/medsynth/v1/translator_pb.js";

// What training/ produced and the service ships: checked without Python (the training
// run itself is checked by `npm run test:training`, test/training/).
const MODELS = "models";
const TESTDATA = join(MODELS, "testdata");
const MAX_MODEL_BYTES = 20 * 1024 * 1024;

interface TestIndex {
  width: number;
  height: number;
  ct: { encoding: string; rescale_intercept: number };
  subjects: { id: string; slices: { index: number; mr: string; ct: string }[] }[];
}

describe("default models and test data from training/", () => {
  it("default models: one per direction, 256x256 greyscale, under 20 MB, trained on real heads, with held-out scores", async () => {
    const all = await loadModelSpecs(MODELS);
    const defaults = all.filter((s) => s.isDefault);
    assert.deepEqual(defaults.map((s) => s.name).sort(), ["ct2mr-heads", "mr2ct-heads"]);
    assert.deepEqual(defaults.map((s) => s.direction).sort(), [Direction.MR_TO_CT, Direction.CT_TO_MR].sort());
    for (const spec of defaults) {
      assert.deepEqual([spec.input.width, spec.input.height, spec.input.channels], [256, 256, 1]);
      assert.ok((await stat(spec.onnxPath)).size < MAX_MODEL_BYTES, `${spec.name} exceeds 20 MB`);
      const provenance = spec.provenance as {
        steps: number;
        data: { heads: Record<string, { source: string; licence: string }> };
        phantom_held_out_scores: { psnr_db: number; ssim: number };
      };
      assert.ok(provenance.steps > 0 && provenance.phantom_held_out_scores.psnr_db > 0, `${spec.name} provenance`);
      const heads = Object.values(provenance.data.heads);
      assert.ok(heads.length >= 3, `${spec.name}: trained on ${heads.length} real heads`);
      for (const head of heads) assert.ok(head.source && head.licence, `${spec.name}: every head names its source and licence`);
    }
    // The phantom models stay, as the pre-trained starting point the build fine-tunes, but serve only by name.
    const phantoms = all.filter((s) => s.name.endsWith("-phantom"));
    assert.deepEqual(phantoms.map((s) => [s.name, s.isDefault]).sort(), [["ct2mr-phantom", false], ["mr2ct-phantom", false]]);
  });

  it("default models run in ONNX Runtime with a dynamic batch and tanh-bounded output", async () => {
    for (const name of ["mr2ct-heads", "ct2mr-heads", "mr2ct-phantom", "ct2mr-phantom"]) {
      const session = await ort.InferenceSession.create(join(MODELS, name, "model.onnx"));
      const input = new Float32Array(2 * 256 * 256).map((_, i) => Math.sin(i / 97));
      const { output } = await session.run({ input: new ort.Tensor("float32", input, [2, 1, 256, 256]) });
      assert.deepEqual(output.dims, [2, 1, 256, 256]);
      const values = output.data as Float32Array;
      // ORT's Tanh is a float32 approximation: it may overshoot ±1 by an ulp (-1.0000001), never by more.
      assert.ok(values.every((v) => Math.abs(v) <= 1 + 1e-6), `${name} output leaves [-1, 1]`);
      await session.release();
    }
  });

  it("ct2mr-heads leaves a CT's head holder out: outside the head, one background value", async () => {
    // A round head (brain 30 HU in a 6-pixel skull of 1000 HU) with a 3-pixel holder shell (200 HU) 16 pixels
    // below it, in air: the generator alone draws some of such a shell; the shipped graph does not.
    const size = 256;
    const input = new Float32Array(size * size);
    const holder: number[] = [];
    const air: number[] = [];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const r = Math.hypot(x - 128, y - 120);
        const onHolder = Math.abs(r - 80) < 1.5 && y > 150;
        const hu = r < 58 ? 30 : r < 64 ? 1000 : onHolder ? 200 : -1000;
        input[y * size + x] = ((hu + 1024) / 4095) * 2 - 1;
        if (onHolder) holder.push(y * size + x);
        else if (r > 100) air.push(y * size + x);
      }
    }
    const session = await ort.InferenceSession.create(join(MODELS, "ct2mr-heads", "model.onnx"));
    const { output } = await session.run({ input: new ort.Tensor("float32", input, [1, 1, size, size]) });
    await session.release();
    const values = output.data as Float32Array;
    const background = values[air[0]];
    const spread = (ids: number[]) => Math.max(...ids.map((i) => Math.abs(values[i] - background)));
    assert.ok(spread(air) < 1e-6, `air far from the head varies by ${spread(air)}`);
    assert.ok(spread(holder) < 1e-6, `the holder is drawn: up to ${spread(holder)} from the background`);
    assert.ok(background < -0.9, `background ${background}: an MR's air is dark`);
    const brain = values[120 * size + 128];
    assert.ok(brain > background + 0.5, `brain ${brain} against background ${background}`);
  });

  it("test series: at least 2 subjects x 24 paired 16-bit 256x256 PNGs, CT stored as HU + 1024", async () => {
    const index = JSON.parse(await readFile(join(TESTDATA, "index.json"), "utf8")) as TestIndex;
    assert.equal(index.ct.rescale_intercept, -1024);
    assert.ok(index.subjects.length >= 2);
    for (const subject of index.subjects) {
      assert.ok(subject.slices.length >= 24, subject.id);
      for (const file of [subject.slices[0].mr, subject.slices[0].ct]) {
        const meta = await sharp(join(TESTDATA, file)).metadata();
        assert.deepEqual([meta.width, meta.height, meta.depth, meta.channels], [256, 256, "ushort", 1], file);
      }
    }
    const ctAir = await sharp(join(TESTDATA, index.subjects[0].slices[0].ct)).raw({ depth: "ushort" }).toBuffer();
    const corner = new Uint16Array(ctAir.buffer, ctAir.byteOffset, 1)[0];
    assert.ok(Math.abs(corner - 1024 - -1000) < 60, `air corner reads ${corner - 1024} HU`);
  });
});
