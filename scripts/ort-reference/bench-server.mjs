// Times ONNX Runtime on one model for OnDevice's peer benchmark. Driven over stdin so the caller can alternate
// batches of ORT runs with batches of its own runs in one process tree:
//
//   node bench-server.mjs --model M.onnx --threads 1 --input name=file.npy [--input ...]
//   stdin: "<n>\n" → stdout: one JSON line {"ms":[...n timings...], "cpu":[...n process CPU times, ms...]};  stdin closed → exit.
//
// Session options follow REFERENCES.md for fair timing: intra-op threads as given, inter-op 1, sequential,
// all graph optimizations.
import readline from 'node:readline';
import ort from 'onnxruntime-node';
import { readNpy } from './npy.mjs';

const argv = process.argv.slice(2);
const opt = (k) => argv[argv.indexOf(k) + 1];
const inputs = argv.flatMap((a, i) => (a === '--input' ? [argv[i + 1]] : []));
const session = await ort.InferenceSession.create(opt('--model'), {
  intraOpNumThreads: Number(opt('--threads')), interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
});
const feeds = {};
for (const spec of inputs) {
  const eq = spec.indexOf('=');
  const t = readNpy(spec.slice(eq + 1));
  feeds[spec.slice(0, eq)] = new ort.Tensor(t.type, t.data, t.dims);
}
await session.run(feeds);
console.log(JSON.stringify({ ready: true }));
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const n = Number(line.trim());
  if (!(n > 0)) continue;
  const ms = [];
  const cpu = [];
  for (let i = 0; i < n; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  console.log(JSON.stringify({ ms, cpu }));
}
