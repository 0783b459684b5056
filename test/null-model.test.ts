// The null model of `bench --ceiling`: an ONNX Identity written at run time
// with a real model's manifest, which the service loads like any other.
import { test } from "node:test";
import assert from "node:assert/strict";
import ort from "onnxruntime-node";
import { identityOnnx, writeNullModel } from "../src/cli/null-model.js";
import { loadModelSpecs } from "../src/inference/registry.js";
import { TINY_MODELS } from "./helpers/service.js";
import { useTempDir } from "./helpers/temp-dir.js";

const tmp = useTempDir("null-model");

test("the identity model runs in ONNX Runtime: any batch, its output is its input", async () => {
  const session = await ort.InferenceSession.create(identityOnnx("in", "out", 3, 5, 7));
  assert.deepEqual([session.inputNames, session.outputNames], [["in"], ["out"]]);
  for (const batch of [1, 4]) {
    const input = Float32Array.from({ length: batch * 3 * 5 * 7 }, (_, i) => Math.sin(i));
    const { out } = await session.run({ in: new ort.Tensor("float32", input, [batch, 3, 5, 7]) });
    assert.deepEqual(out.dims, [batch, 3, 5, 7]);
    assert.deepEqual(out.data, input);
  }
});

test("writeNullModel gives a model folder the registry loads with the real model's inputs, outputs and windows", async () => {
  const real = (await loadModelSpecs(TINY_MODELS)).find((m) => m.name === "tiny-mr2ct-rgb")!;
  const name = await writeNullModel(real, tmp.path);
  const [spec] = await loadModelSpecs(tmp.path);
  assert.equal(spec.name, name);
  assert.equal(name, "tiny-mr2ct-rgb-null");
  assert.deepEqual([spec.direction, spec.input, spec.output, spec.intensity, spec.isDefault], [real.direction, real.input, real.output, real.intensity, true]);
  assert.match(spec.description, /^identity with the inputs and outputs of tiny-mr2ct-rgb/);
  await assert.rejects(writeNullModel({ ...real, output: { ...real.output, channels: 1 } }, tmp.path), /maps 3 channels to 1/);
});
