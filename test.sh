#!/usr/bin/env bash
# Runs every OnDevice test. This is the README's test command and what .ci/run executes.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build OnDevice.sln -c Release -warnaserror -nologo -v quiet
dotnet test OnDevice.sln -c Release --no-build --nologo -v quiet "$@"
