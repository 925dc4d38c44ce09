#!/usr/bin/env bash
# LLM decode vs the memory-bandwidth roofline: N rounds of the decode bench, alternating a baseline build and the current
# build in the same minutes, then per-row medians of decode tokens/s and of the fraction of the roofline probed just
# before each row (same run). Run from the repo root on an idle machine:
#   bench/llm/roofline-runs.sh BASELINE [ROUNDS] [CURRENT_DLL]
# BASELINE: a built OnDevice.Bench.Llm.dll, or a git ref (e.g. main~3) that is exported with `git archive` to a temp
# folder and built there. ROUNDS defaults to 7. CURRENT_DLL defaults to this tree's Release build (built first).
# Extra bench arguments go in $BENCH_ARGS (default: --tokens 16 --formats int8,int4 --threads 1,2 --skip-stories).
# Each round runs both builds, the first of the pair alternating between rounds. Raw outputs stay in $OUT (printed).
set -euo pipefail
cd "$(dirname "$0")/../.."

baseline=${1:?usage: bench/llm/roofline-runs.sh BASELINE_DLL_OR_GIT_REF [ROUNDS] [CURRENT_DLL]}
rounds=${2:-7}
current=${3:-}
args=${BENCH_ARGS:---tokens 16 --formats int8,int4 --threads 1,2 --skip-stories}
OUT=${OUT:-$(mktemp -d /tmp/ondevice-llm-roofline.XXXXXX)}
mkdir -p "$OUT"

build() { # DIR: Release build of the LLM bench in DIR, prints the dll path
  dotnet build "$1/bench/OnDevice.Bench.Llm" -c Release -nologo -v q >&2
  echo "$1/bench/OnDevice.Bench.Llm/bin/Release/net10.0/OnDevice.Bench.Llm.dll"
}

if [[ "$baseline" != *.dll ]]; then
  src="$OUT/baseline-src"
  mkdir -p "$src"
  git archive "$baseline" | tar -x -C "$src"
  echo "building baseline $baseline ($(git rev-parse --short "$baseline")) in $src" >&2
  baseline=$(build "$src")
fi
if [ -z "$current" ]; then
  echo "building the current tree ($(git rev-parse --short HEAD)$(git diff --quiet || echo ', with uncommitted changes'))" >&2
  current=$(build "$PWD")
fi
[ -f "$baseline" ] || { echo "no baseline dll at $baseline" >&2; exit 1; }
[ -f "$current" ] || { echo "no current dll at $current" >&2; exit 1; }

echo "baseline: $baseline"
echo "current:  $current"
echo "bench arguments: $args; rounds: $rounds; raw output: $OUT"
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then order="baseline current"; else order="current baseline"; fi
  for which in $order; do
    dll=$baseline; [ "$which" = current ] && dll=$current
    echo "round $r/$rounds: $which (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    # shellcheck disable=SC2086
    (cd /tmp && dotnet "$dll" $args) > "$OUT/$which-$r.txt"
  done
done

# Rows of the bench table: | weights | threads | tokens/s | bytes | bandwidth | fraction % | ...
summarize() { # WHICH
  for f in "$OUT/$1"-*.txt; do
    awk -F'|' '$2 ~ /^ (fp32|int8|int4) $/ && $3 ~ /^ [0-9]+ $/ {
      gsub(/ /, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $4); v = $7; gsub(/[ %]/, "", v); print $2, $3, $4, v }' "$f"
  done
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

summarize baseline > "$OUT/baseline.rows"
summarize current > "$OUT/current.rows"
echo
echo "| weights | threads | decode tokens/s, current (median) | baseline (median) | ratio | fraction of same-run roofline, current (median) | baseline (median) | runs (current: tokens/s / fraction) |"
echo "|---|---|---|---|---|---|---|---|"
for key in $(awk '{ print $1 ":" $2 }' "$OUT/current.rows" | awk '!seen[$0]++'); do
  w=${key%%:*}; t=${key##*:}
  ct=$(awk -v w="$w" -v t="$t" '$1 == w && $2 == t { print $3 }' "$OUT/current.rows" | median)
  bt=$(awk -v w="$w" -v t="$t" '$1 == w && $2 == t { print $3 }' "$OUT/baseline.rows" | median)
  cf=$(awk -v w="$w" -v t="$t" '$1 == w && $2 == t { print $4 }' "$OUT/current.rows" | median)
  bf=$(awk -v w="$w" -v t="$t" '$1 == w && $2 == t { print $4 }' "$OUT/baseline.rows" | median)
  runs=$(awk -v w="$w" -v t="$t" '$1 == w && $2 == t { printf "%s%s / %s %%", (n++ ? ", " : ""), $3, $4 }' "$OUT/current.rows")
  ratio=$(awk -v a="$ct" -v b="$bt" 'BEGIN { if (b + 0 > 0) printf "%.2f×", a / b; else print "-" }')
  echo "| $w | $t | $ct | $bt | $ratio | $cf % | $bf % | $runs |"
done
