/**
 * The null model of `bench --ceiling`: an ONNX Identity with the manifest of
 * a real model (same input and output names, channels and size), so the
 * service does everything it does for that model except the arithmetic of
 * inference. What the service then moves per second is its own ceiling.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { directionName } from "../contract/direction.js";
import type { ModelSpec } from "../inference/registry.js";

/** ONNX field numbers (onnx/onnx.proto) of the few messages an Identity model needs. */
const ONNX = {
  model: { irVersion: 1, producerName: 2, graph: 7, opsetImport: 8 },
  opset: { version: 2 },
  graph: { node: 1, name: 2, input: 11, output: 12 },
  node: { input: 1, output: 2, opType: 4 },
  valueInfo: { name: 1, type: 2 },
  type: { tensorType: 1 },
  tensor: { elemType: 1, shape: 2 },
  shape: { dim: 1 },
  dim: { value: 1, param: 2 },
  /** TensorProto.DataType.FLOAT */
  float: 1,
  /** IR version 8 and opset 17: what the default models are exported with. */
  irVersion: 8,
  opsetVersion: 17,
};

/** A length-delimited field written by `body`. */
function nested(writer: BinaryWriter, field: number, body: (w: BinaryWriter) => void): void {
  writer.tag(field, 2).fork();
  body(writer);
  writer.join();
}

/** A float32 [N, channels, height, width] tensor with a free batch dimension. */
function tensorInfo(writer: BinaryWriter, field: number, name: string, dims: number[]): void {
  nested(writer, field, (w) => {
    w.tag(ONNX.valueInfo.name, 2).string(name);
    nested(w, ONNX.valueInfo.type, (t) =>
      nested(t, ONNX.type.tensorType, (tensor) => {
        tensor.tag(ONNX.tensor.elemType, 0).int32(ONNX.float);
        nested(tensor, ONNX.tensor.shape, (shape) => {
          nested(shape, ONNX.shape.dim, (d) => d.tag(ONNX.dim.param, 2).string("N"));
          for (const size of dims) nested(shape, ONNX.shape.dim, (d) => d.tag(ONNX.dim.value, 0).int64(size));
        });
      }),
    );
  });
}

/** The bytes of an ONNX model whose output `outputName` is its input `inputName`, [N, C, H, W] float32. */
export function identityOnnx(inputName: string, outputName: string, channels: number, height: number, width: number): Uint8Array {
  const w = new BinaryWriter();
  w.tag(ONNX.model.irVersion, 0).int64(ONNX.irVersion);
  w.tag(ONNX.model.producerName, 2).string("medsynth bench --ceiling");
  nested(w, ONNX.model.graph, (graph) => {
    nested(graph, ONNX.graph.node, (node) => {
      node.tag(ONNX.node.input, 2).string(inputName);
      node.tag(ONNX.node.output, 2).string(outputName);
      node.tag(ONNX.node.opType, 2).string("Identity");
    });
    graph.tag(ONNX.graph.name, 2).string("null-model");
    tensorInfo(graph, ONNX.graph.input, inputName, [channels, height, width]);
    tensorInfo(graph, ONNX.graph.output, outputName, [channels, height, width]);
  });
  nested(w, ONNX.model.opsetImport, (opset) => opset.tag(ONNX.opset.version, 0).int64(ONNX.opsetVersion));
  return w.finish();
}

/**
 * Writes `<dir>/<name>-null/` with model.json (the real model's manifest,
 * renamed, with a description saying what it is) and an Identity model.onnx; returns
 * the null model's name. The real model must map its input channels to as
 * many output channels, as an identity does.
 */
export async function writeNullModel(real: ModelSpec, dir: string): Promise<string> {
  if (real.input.channels !== real.output.channels) {
    throw new Error(`model ${real.name} maps ${real.input.channels} channels to ${real.output.channels}; a null model needs as many out as in`);
  }
  const name = `${real.name}-null`;
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  const { input, output } = real;
  await writeFile(join(folder, "model.onnx"), identityOnnx(input.name, output.name, input.channels, input.height, input.width));
  const manifest = {
    schema: 1,
    name,
    direction: directionName(real.direction),
    version: real.version,
    onnx: "model.onnx",
    default: true,
    description: `identity with the inputs and outputs of ${real.name}: the service's ceiling without inference (bench --ceiling)`,
    input,
    output,
    intensity: real.intensity,
    provenance: { made_by: "medsynth bench --ceiling", of: real.name },
  };
  await writeFile(join(folder, "model.json"), JSON.stringify(manifest, null, 2) + "\n");
  return name;
}
