#!/usr/bin/env bash
# Sizes of the sample models after each compression, from `ondevice quantize|palettize|prune --json`.
#   bench/compress/sizes.sh [path/to/ondevice.dll]   (build first: dotnet build src/OnDevice.Cli -c Release)
# Prints a markdown table: file bytes before/after and the ratio, and the ratio on the weights the pass covers.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dll=${1:-$root/src/OnDevice.Cli/bin/Release/net10.0/ondevice.dll}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| model | compression | fp32 file | compressed file | file ratio | covered weights before → after | weight ratio | layers kept float |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for model in paddleocr-rec paddleocr-det paddleocr-cls silero-vad-16k-op15 openwakeword-hello-deepa; do
  while IFS='|' read -r label args; do
    # shellcheck disable=SC2086
    if ! dotnet "$dll" $args "$model" -o "$out/m.onnx" --json > "$out/r.json" 2> "$out/err.txt"; then
      echo "| $model | $label | failed: $(head -c 200 "$out/err.txt") |"; continue
    fi
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const f = n => n.toLocaleString("en-US");
      console.log(`| ${process.argv[2]} | ${process.argv[3]} | ${f(r.inputBytes)} | ${f(r.outputBytes)} | ${(r.inputBytes / r.outputBytes).toFixed(2)}x | ${f(r.layerBytesBefore)} → ${f(r.layerBytesAfter)} | ${r.layerBytesAfter > 0 ? (r.layerBytesBefore / r.layerBytesAfter).toFixed(2) + "x" : "n/a (nothing to prune)"} | ${r.stayedFloat.length} |`);
    ' "$out/r.json" "$model" "$label"
  done <<'CASES'
int8 per-channel sym (QDQ)|quantize --weights int8 --granularity channel --symmetric
int8 per-channel asym (QDQ)|quantize --weights int8 --granularity channel
int4 block-32 sym (QDQ, opset 21)|quantize --weights int4 --granularity block:32 --symmetric
uint4 block-32 asym (MatMulNBits; Conv as DQ)|quantize --weights uint4 --granularity block:32 --format matmulnbits
palettized 6-bit (uint8 indices)|palettize --bits 6
palettized 4-bit (uint4 indices)|palettize --bits 4
pruned 50% output channels|prune --sparsity 0.5 --pattern channel
CASES
done
