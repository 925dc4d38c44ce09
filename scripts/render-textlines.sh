#!/usr/bin/env bash
# Renders text-line images for OCR evaluation with ImageMagick and Debian fonts: a clean set and a degraded set
# (small glyphs, blur, noise, low contrast) of the same lines, Latin (DejaVu) and Chinese (Noto CJK), every
# character taken from the recognizer's dictionary. Deterministic for a seed (own LCG, ImageMagick -seed).
#
#   scripts/render-textlines.sh --dict ppocr_keys_v1.txt [--out DIR] [--count N] [--seed S]
#
# Writes DIR/clean and DIR/degraded, each with NNNNN.png and labels.tsv (file, label, font, script, length,
# degradation) — a dataset for `ondevice eval/compare --task ctc`. DIR defaults to $ONDEVICE_CACHE/textlines
# (~/.cache/ondevice/textlines) and must be outside the repository.
set -euo pipefail

out="${ONDEVICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ondevice}/textlines"
count=200
seed=1
dict=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --count) count="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --dict) dict="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "render-textlines: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$dict" ] || { echo "render-textlines: --dict FILE is required (ppocr_keys_v1.txt of the paddleocr-rec sample)" >&2; exit 2; }
[ -f "$dict" ] || { echo "render-textlines: dictionary '$dict' not found" >&2; exit 2; }
[[ "$count" =~ ^[0-9]+$ ]] && [ "$count" -gt 0 ] || { echo "render-textlines: --count must be a positive integer" >&2; exit 2; }
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "render-textlines: --seed must be a non-negative integer" >&2; exit 2; }
command -v convert >/dev/null || { echo "render-textlines: ImageMagick 'convert' is required (scripts/setup.sh installs it)" >&2; exit 1; }

repo="$(cd "$(dirname "$0")/.." && pwd -P)"
out="$(realpath -m "$out")"
case "$out/" in "$repo"/*) echo "render-textlines: refusing to write into the repository ($out); choose a cache folder" >&2; exit 2 ;; esac
mkdir -p "$out"

dejavu=/usr/share/fonts/truetype/dejavu
noto=/usr/share/fonts/opentype/noto
latin_fonts=("$dejavu/DejaVuSans.ttf:dejavu-sans" "$dejavu/DejaVuSerif.ttf:dejavu-serif" "$dejavu/DejaVuSansMono.ttf:dejavu-mono")
cjk_fonts=("$noto/NotoSansCJK-Regular.ttc:noto-sans-cjk" "$noto/NotoSerifCJK-Regular.ttc:noto-serif-cjk")
for f in "${latin_fonts[@]}" "${cjk_fonts[@]}"; do
  [ -f "${f%%:*}" ] || { echo "render-textlines: font ${f%%:*} missing (apt-get install fonts-dejavu-core fonts-noto-cjk)" >&2; exit 1; }
done

latin_words=(the of and to in is you that it he was for on are as with his they at be this have from or one had by
  word but not what all were we when your can said there use an each which she do how their if will up other about
  out many then them these so some her would make like him into time has look two more write go see number no way
  could people my than first water been call who oil its now find long down day did get come made may part over new
  sound take only little work know place year live me back give most very after thing our just name good sentence
  man think say great where help through much before line right too mean old any same tell boy follow came want show
  also around form three small set put end does another well large must big even such because turn here why ask went
  men read need land different home us move try kind hand picture again change off play spell air away animal house
  point page letter mother answer found study still learn should America world high every near add food between own
  below country plant last school father keep tree never start city earth eye light thought head under story saw left
  Monday Paris London Model Device Phone Version Update Size Memory Battery Camera Network Signal Data Server)
digits_words=(2026 1024 48 320 7.5 100% 3.14 15:30 No.8 A4 x86 v2.1 '#12' '$9.99' 2x)
cjk_chars="的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"
dict_chars="$(mktemp)"
trap 'rm -f "$dict_chars"' EXIT
tr -d '\r' < "$dict" > "$dict_chars"
in_dict() { grep -qxF -- "$1" "$dict_chars"; }
cjk=()
while IFS= read -r ch; do [ -n "$ch" ] && in_dict "$ch" && cjk+=("$ch"); done < <(printf '%s' "$cjk_chars" | grep -o .)
[ ${#cjk[@]} -ge 100 ] || { echo "render-textlines: only ${#cjk[@]} Chinese characters found in $dict; is it ppocr_keys_v1.txt?" >&2; exit 1; }
for ch in a A z Z 0 9 . % '$' '#' ':' x; do in_dict "$ch" || { echo "render-textlines: '$ch' is not in $dict" >&2; exit 1; }; done

state=$seed
rand() { state=$(( (state * 1103515245 + 12345) % 2147483648 )); r=$(( (state >> 8) % $1 )); }

mkdir -p "$out/clean" "$out/degraded"
header=$'file\tlabel\tfont\tscript\tlength\tdegradation'
clean_tsv="$out/clean/labels.tsv.tmp"; degraded_tsv="$out/degraded/labels.tsv.tmp"
echo "$header" > "$clean_tsv"; echo "$header" > "$degraded_tsv"
degradations=(small blur noise lowcontrast)
for ((i = 0; i < count; i++)); do
  name=$(printf '%05d.png' "$i")
  rand 3
  if [ "$r" -lt 2 ]; then
    script=latin
    rand 5; n=$((r + 1)); text=""
    for ((k = 0; k < n; k++)); do
      rand 10
      if [ "$r" -eq 0 ]; then rand ${#digits_words[@]}; w=${digits_words[$r]}; else rand ${#latin_words[@]}; w=${latin_words[$r]}; fi
      text+="${text:+ }$w"
    done
    rand ${#latin_fonts[@]}; font=${latin_fonts[$r]}
  else
    script=chinese
    rand 12; n=$((r + 3)); text=""
    for ((k = 0; k < n; k++)); do rand ${#cjk[@]}; text+="${cjk[$r]}"; done
    rand ${#cjk_fonts[@]}; font=${cjk_fonts[$r]}
  fi
  len=$(printf '%s' "$text" | wc -m)
  if [ "$len" -le 8 ]; then bucket=short; elif [ "$len" -le 18 ]; then bucket=medium; else bucket=long; fi
  file=${font%%:*}; fname=${font##*:}
  # ImageMagick expands %-escapes and backslashes in label: text; double them so the text is drawn as is.
  esc=${text//\\/\\\\}; esc=${esc//%/%%}
  convert -background white -fill black -font "$file" -pointsize 32 "label:$esc" \
    -bordercolor white -border 10x6 -type TrueColor "PNG24:$out/clean/$name"
  rand ${#degradations[@]}; deg=${degradations[$r]}
  case "$deg" in
    small) convert -background white -fill black -font "$file" -pointsize 11 "label:$esc" -bordercolor white -border 3x2 "PNG24:$out/degraded/$name" ;;
    blur) convert "$out/clean/$name" -blur 0x1.8 "PNG24:$out/degraded/$name" ;;
    noise) convert "$out/clean/$name" -seed $((seed * 100003 + i)) -attenuate 0.9 +noise Gaussian "PNG24:$out/degraded/$name" ;;
    lowcontrast) convert -background gray72 -fill gray52 -font "$file" -pointsize 32 "label:$esc" -bordercolor gray72 -border 10x6 "PNG24:$out/degraded/$name" ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$text" "$fname" "$script" "$bucket" none >> "$clean_tsv"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$text" "$fname" "$script" "$bucket" "$deg" >> "$degraded_tsv"
done
mv "$clean_tsv" "$out/clean/labels.tsv"
mv "$degraded_tsv" "$out/degraded/labels.tsv"
echo "render-textlines: $count lines in $out/clean and $out/degraded (seed $seed)"
