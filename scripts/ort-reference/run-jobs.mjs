// Runs models in ONNX Runtime on .npy inputs and writes the outputs as .npy, for agreement tests of models
// OnDevice writes (quantized, palettized, pruned).
//
//   node run-jobs.mjs --jobs <jobs.json>
//
// jobs.json: [{ "model": path, "inputs": { name: npyPath }, "out": dir, "optimization": "all"|"basic"|"disabled" }]. Each job writes out/output.<i>.npy per
// output (in the session's output order) and out/outputs.json; a job that fails writes out/error.txt instead, so
// one bad model does not hide the others.
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { readNpy, writeNpy } from './npy.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const jobs = JSON.parse(fs.readFileSync(args.jobs, 'utf8'));
for (const job of jobs) {
  fs.mkdirSync(job.out, { recursive: true });
  try {
    const session = await ort.InferenceSession.create(job.model, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: job.optimization ?? 'all' });
    const feeds = {};
    for (const [name, file] of Object.entries(job.inputs)) {
      const t = readNpy(file);
      feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    }
    const results = await session.run(feeds);
    const outputs = [];
    session.outputNames.forEach((name, i) => {
      const t = results[name];
      const file = `output.${i}.npy`;
      writeNpy(path.join(job.out, file), t.type, t.dims, t.data);
      outputs.push({ name, file, dims: t.dims, type: t.type });
    });
    fs.writeFileSync(path.join(job.out, 'outputs.json'), JSON.stringify(outputs));
  } catch (e) {
    fs.writeFileSync(path.join(job.out, 'error.txt'), String(e?.message ?? e));
  }
}
