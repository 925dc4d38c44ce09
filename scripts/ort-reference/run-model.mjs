// Runs one ONNX model in ONNX Runtime (CPU, all graph optimizations, 1 thread) on inputs given as .npy files and
// writes its outputs as .npy files: the peer for tests on generated models (quantized graphs, contrib operators).
//
//   node run-model.mjs --model model.onnx --dir <dir with input.NAME.npy>   → writes output.NAME.npy into <dir>
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { readNpy, writeNpy } from './npy.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const session = await ort.InferenceSession.create(args.model, {
  intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: args.opt ?? 'all',
});
const feeds = {};
for (const name of session.inputNames) {
  const t = readNpy(path.join(args.dir, `input.${name}.npy`));
  feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
}
const results = await session.run(feeds);
for (const name of session.outputNames) {
  const t = results[name];
  writeNpy(path.join(args.dir, `output.${name}.npy`), t.type, t.dims, t.data);
}
