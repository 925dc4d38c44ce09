// ONNX Runtime's CER on the same preprocessed lines as `ondevice eval --task ctc` (greedy CTC, PaddleOCR dictionary with
// blank first and space last; texts trimmed; CER = total edit distance / total label characters), so a quantized file's
// CER can be checked in both runtimes:
//
//   node bench/compress/ort-ctc.mjs MODEL INPUTS_DIR DICT LABELS_TSV
//
// INPUTS_DIR: `ondevice eval ... --save-inputs DIR` of the same set (DIR/NNNNN/x.npy, in label order).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
const require = createRequire(new URL('../../scripts/ort-reference/package.json', import.meta.url));
const ort = require('onnxruntime-node');
import { readNpy } from '../../scripts/ort-reference/npy.mjs';
const [model, dir, dictPath, labelsPath] = process.argv.slice(2);
const dict = ['', ...fs.readFileSync(dictPath, 'utf8').split('\n').filter((l, i, a) => !(i === a.length - 1 && l === '')).map(l => l.replace(/\r$/, '')), ' '];
const labels = fs.readFileSync(labelsPath, 'utf8').trim().split('\n').slice(1).map(l => l.split('\t')[1]);
const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
const subs = fs.readdirSync(dir).sort();
function lev(a, b) { const d = Array.from({ length: b.length + 1 }, (_, j) => j); for (let i = 1; i <= a.length; i++) { let prev = d[0]; d[0] = i; for (let j = 1; j <= b.length; j++) { const t = d[j]; d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1)); prev = t; } } return d[b.length]; }
let e = 0, n = 0; const preds = [];
for (let i = 0; i < subs.length; i++) {
  const f = fs.readdirSync(path.join(dir, subs[i]))[0];
  const t = readNpy(path.join(dir, subs[i], f));
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor(t.type, t.data, t.dims) });
  const y = out[s.outputNames[0]]; const [, T, C] = y.dims;
  let txt = '', prev = -1;
  for (let k = 0; k < T; k++) { let best = 0, bv = -Infinity; for (let c = 0; c < C; c++) { const v = y.data[k * C + c]; if (v > bv) { bv = v; best = c; } } if (best !== prev && best !== 0) txt += dict[best]; prev = best; }
  const p = [...txt.trim()], l = [...labels[i].trim()];
  e += lev(p, l); n += l.length; preds.push(txt.trim());
}
console.log(JSON.stringify({ model, cer: e / n, examples: subs.length }));
