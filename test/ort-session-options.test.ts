import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ort from "onnxruntime-node";
import { nodePlacement, profiled, readPlacement, sessionOptions } from "../src/inference/ort-session-options.js";

const MODEL = join("models", "mr2ct-phantom", "model.onnx");
const settings = { deviceId: 1, intraOpThreads: 3 };

test("CPU sessions run without ORT's CPU memory arena, so RSS follows what inference uses", () => {
  assert.deepEqual(sessionOptions("cpu", settings), {
    executionProviders: ["cpu"],
    intraOpNumThreads: 3,
    enableCpuMemArena: false,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
  });
});

test("CUDA sessions run one intra-op thread and refuse to fall back to the CPU per node", () => {
  const cuda = sessionOptions("cuda", settings);
  assert.deepEqual(cuda.executionProviders, [{ name: "cuda", deviceId: 1 }]);
  assert.equal(cuda.intraOpNumThreads, 1);
  assert.equal(cuda.interOpNumThreads, 1);
  assert.equal(cuda.graphOptimizationLevel, "all");
  assert.deepEqual(cuda.extra, { session: { disable_cpu_ep_fallback: "1" } });
});

test("ONNX Runtime honours the CUDA options' config entry: with it, a session whose nodes land on the CPU is refused", async () => {
  // Only the CPU provider here, so every node lands on it: proof that the
  // entry's name reaches ORT (onnxruntime-node passes `extra` through unchecked).
  const { extra } = sessionOptions("cuda", settings);
  await assert.rejects(
    // Severity 4: ORT would also print the refusal to stderr.
    ort.InferenceSession.create(MODEL, { ...sessionOptions("cpu", settings), extra, logSeverityLevel: 4 }),
    /fallback to CPU EP has been explicitly disabled/,
  );
});

test("node placement from a profiled run: every node and its provider; no shape arithmetic left for ORT to pin to the CPU", async () => {
  const dir = await mkdtemp(join(tmpdir(), "medsynth-placement-"));
  try {
    const session = await ort.InferenceSession.create(MODEL, profiled(sessionOptions("cpu", { deviceId: 0, intraOpThreads: 1 }), dir));
    await session.run({ input: new ort.Tensor("float32", new Float32Array(256 * 256), [1, 1, 256, 256]) });
    session.endProfiling();
    await session.release();
    const placement = await readPlacement(dir);
    assert.deepEqual(Object.keys(placement), ["CPUExecutionProvider"]);
    const ops = placement.CPUExecutionProvider;
    // The generator's layers: 16 convolutions (the last with its tanh fused in), 2 transposed, 14 reflection pads.
    assert.equal(ops.Conv, 16);
    assert.equal(ops.ConvTranspose, 2);
    assert.equal(ops.Pad, 14);
    assert.equal(ops.InstanceNormalization, 17);
    // The exporter's pad-size arithmetic is folded into constants before
    // partitioning; were any of it left, ORT would keep it on the CPU under
    // CUDA and disable_cpu_ep_fallback would refuse the session.
    for (const op of ["Shape", "ConstantOfShape", "Concat", "Reshape", "Slice", "Gather", "Cast", "Transpose"]) {
      assert.equal(ops[op], undefined, `${op} survived optimisation`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("node placement counts kernel events only, per provider and operator", () => {
  assert.deepEqual(
    nodePlacement([
      { cat: "Session", name: "model_run", args: {} },
      { cat: "Node", name: "conv1_kernel_time", args: { provider: "CUDAExecutionProvider", op_name: "Conv" } },
      { cat: "Node", name: "conv2_kernel_time", args: { provider: "CUDAExecutionProvider", op_name: "Conv" } },
      { cat: "Node", name: "conv2_fence_before", args: { provider: "CUDAExecutionProvider", op_name: "Conv" } },
      { cat: "Node", name: "shape_kernel_time", args: { provider: "CPUExecutionProvider", op_name: "Shape" } },
    ]),
    { CUDAExecutionProvider: { Conv: 2 }, CPUExecutionProvider: { Shape: 1 } },
  );
});
