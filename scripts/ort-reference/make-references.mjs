// Writes fixed inputs and ONNX Runtime's outputs for every OnDevice sample model, so OnDevice's runtime can be
// compared against the peer on the same bytes.
//
//   node make-references.mjs --samples <json from `ondevice samples list --json`> --out <dir>
//
// OCR inputs are real renderings of text made with ImageMagick (DejaVu Sans and Noto Sans CJK), preprocessed as
// PaddleOCR does: BGR, rec/cls height 48 with the width from the aspect ratio (padded with zeros),
// (x/255 − 0.5)/0.5 for rec/cls, ImageNet mean/std for det, NCHW.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import ort from 'onnxruntime-node';
import { writeNpy } from './npy.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const samples = JSON.parse(fs.readFileSync(args.samples, 'utf8')).samples;
const out = args.out;
const pathOf = name => samples.find(s => s.name === name).path;

function magick(argv) {
  // Returns { width, height, rgb } decoded from binary PPM (P6).
  const ppm = execFileSync('convert', [...argv, '-depth', '8', 'ppm:-'], { maxBuffer: 1 << 28 });
  let pos = 0;
  const token = () => {
    while (ppm[pos] === 0x20 || ppm[pos] === 0x0a || ppm[pos] === 0x0d || ppm[pos] === 0x09) pos++;
    if (ppm[pos] === 0x23) { while (ppm[pos] !== 0x0a) pos++; return token(); }
    const s = pos;
    while (![0x20, 0x0a, 0x0d, 0x09].includes(ppm[pos])) pos++;
    return ppm.toString('latin1', s, pos);
  };
  if (token() !== 'P6') throw new Error('expected P6');
  const width = +token(), height = +token(), max = +token();
  if (max !== 255) throw new Error('expected 8-bit PPM');
  pos++;
  return { width, height, rgb: ppm.subarray(pos, pos + width * height * 3) };
}

function textLine(text, font) {
  return magick(['-background', 'white', '-fill', 'black', '-font', font, '-pointsize', '36', `label:${text}`, '-bordercolor', 'white', '-border', '8x6']);
}

// Resize (ImageMagick, bilinear-ish) to height 48, keep aspect, cap width, pad to targetWidth with zeros after normalizing.
function recTensor(text, font, targetWidth) {
  const probe = textLine(text, font);
  const w = Math.min(targetWidth, Math.max(1, Math.round(probe.width * 48 / probe.height)));
  const img = magick(['-background', 'white', '-fill', 'black', '-font', font, '-pointsize', '36', `label:${text}`, '-bordercolor', 'white', '-border', '8x6', '-resize', `${w}x48!`]);
  const data = new Float32Array(3 * 48 * targetWidth);
  for (let y = 0; y < 48; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        const v = img.rgb[(y * w + x) * 3 + (2 - c)]; // BGR
        data[c * 48 * targetWidth + y * targetWidth + x] = (v / 255 - 0.5) / 0.5;
      }
  return { type: 'float32', dims: [1, 3, 48, targetWidth], data };
}

function detTensor(lines, size) {
  const argv = ['-size', `${size}x${size}`, 'xc:white', '-fill', 'black'];
  lines.forEach(([text, font], i) => argv.push('-font', font, '-pointsize', '30', '-annotate', `+30+${70 + i * 70}`, text));
  const img = magick(argv);
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  const data = new Float32Array(3 * size * size);
  for (let i = 0; i < size * size; i++)
    for (let c = 0; c < 3; c++) data[c * size * size + i] = (img.rgb[i * 3 + (2 - c)] / 255 - mean[c]) / std[c];
  return { type: 'float32', dims: [1, 3, size, size], data };
}

function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

function noise(n, seed, scale = 1) {
  const r = lcg(seed), a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

const latin = 'DejaVu-Sans', cjk = 'Noto-Sans-CJK-SC';
const recLines = [['Hello World 2026', latin], ['OnDevice runs models', latin], ['价格 12.50 元', cjk], ['深度学习模型', cjk]];
const cases = [];
recLines.forEach(([t, f], i) => cases.push({ sample: 'paddleocr-rec', name: `line${i}`, text: t, inputs: { x: recTensor(t, f, 320) } }));
recLines.slice(0, 2).forEach(([t, f], i) => cases.push({ sample: 'paddleocr-cls', name: `line${i}`, text: t, inputs: { x: recTensor(t, f, 192) } }));
cases.push({ sample: 'paddleocr-det', name: 'page640', inputs: { x: detTensor([...recLines, ['The quick brown fox jumps', latin], ['over the lazy dog 0123456789', latin]], 640) } });
for (const vad of ['silero-vad', 'silero-vad-16k-op15', 'silero-vad-op18-ifless']) {
  const audio = new Float32Array(512);
  for (let i = 0; i < 512; i++) audio[i] = 0.5 * Math.sin(2 * Math.PI * 220 * i / 16000) + 0.05 * (lcg(i + 7)() - 0.5);
  const inputs = { input: { type: 'float32', dims: [1, 512], data: audio }, state: { type: 'float32', dims: [2, 1, 128], data: noise(256, 3, 0.1) }, sr: { type: 'int64', dims: [], data: BigInt64Array.from([16000n]) } };
  cases.push({ sample: vad, name: 'chunk512', inputs });
}
for (const ww of ['openwakeword-hello-deepa', 'openwakeword-hello-deepa-old', 'openwakeword-namaste-deepa'])
  cases.push({ sample: ww, name: 'features', inputs: null });

fs.mkdirSync(out, { recursive: true });
for (const c of cases) {
  const session = await ort.InferenceSession.create(pathOf(c.sample), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  if (c.inputs === null) {
    // Shapes come from the model: fill dynamic dims with 1 and features with deterministic noise.
    c.inputs = {};
    for (const name of session.inputNames) {
      const meta = session.inputMetadata?.find?.(m => m.name === name);
      const dims = (meta?.shape ?? [1, 16, 96]).map(d => (typeof d === 'number' && d > 0 ? d : 1));
      c.inputs[name] = { type: 'float32', dims, data: noise(dims.reduce((a, b) => a * b, 1), 11) };
    }
  }
  const dir = path.join(out, c.sample, c.name);
  fs.mkdirSync(dir, { recursive: true });
  const feeds = {};
  for (const [name, t] of Object.entries(c.inputs)) {
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    writeNpy(path.join(dir, `input.${name}.npy`), t.type, t.dims, t.data);
  }
  const results = await session.run(feeds);
  const outputs = [];
  for (const [name, t] of Object.entries(results)) {
    writeNpy(path.join(dir, `output.${name.replaceAll('/', '_')}.npy`), t.type, t.dims, t.data);
    outputs.push({ name, file: `output.${name.replaceAll('/', '_')}.npy`, dims: t.dims, type: t.type });
  }
  fs.writeFileSync(path.join(dir, 'case.json'), JSON.stringify({ sample: c.sample, case: c.name, text: c.text ?? null, inputs: Object.keys(c.inputs), outputs, ort: '1.30.0' }, null, 2));
  console.log(`${c.sample}/${c.name}: ${outputs.map(o => `${o.name}[${o.dims}]`).join(', ')}`);
}
fs.writeFileSync(path.join(out, 'COMPLETE'), new Date().toISOString());
