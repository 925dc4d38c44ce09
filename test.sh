#!/usr/bin/env bash
# Runs every OnDevice test. This is the README's test command and what .ci/run executes.
# The kernel tests run once more with AVX-512, with AVX2 and with every hardware intrinsic disabled, so each
# rung of the SIMD ladders (Vector512 → Vector256 → Vector128 → scalar) is checked against its scalar twin.
# (.NET 10's switch for the whole AVX-512 family is DOTNET_EnableAVX512; DOTNET_EnableAVX512F=0 leaves it on.)
set -euo pipefail
cd "$(dirname "$0")"
dotnet build OnDevice.sln -c Release -warnaserror -nologo -v quiet
dotnet test OnDevice.sln -c Release --no-build --nologo -v quiet "$@"
for rung in DOTNET_EnableAVX512 DOTNET_EnableAVX2 DOTNET_EnableHWIntrinsic; do
  echo "== kernel tests with $rung=0"
  env "$rung=0" dotnet test tests/OnDevice.Runtime.Tests -c Release --no-build --nologo -v quiet --filter "Category=Kernels|Category=Conformance" "$@"
done
