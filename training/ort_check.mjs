// Runs an exported model in ONNX Runtime (the runtime the service uses) on a raw float32 NCHW input.
// Usage: node training/ort_check.mjs model.onnx input.f32 N,C,H,W output.f32
import { readFileSync, writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const [modelPath, inputPath, shapeArg, outputPath] = process.argv.slice(2);
const shape = shapeArg.split(',').map(Number);
const bytes = readFileSync(inputPath);
const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const session = await ort.InferenceSession.create(modelPath);
const result = await session.run({ input: new ort.Tensor('float32', data, shape) });
const output = result.output;
writeFileSync(outputPath, Buffer.from(output.data.buffer, output.data.byteOffset, output.data.byteLength));
process.stdout.write(JSON.stringify({ dims: output.dims }) + '\n');
