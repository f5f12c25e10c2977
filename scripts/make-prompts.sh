#!/usr/bin/env bash
# Generates the stock English prompts as 8 kHz mono 16-bit PCM WAV files with
# espeak-ng and sox (Debian packages espeak-ng, sox). The output is committed
# under prompts/en/, so running the PBX never needs these tools.
#
# Three groups of prompts are written:
#   1. the original stock prompts (welcome, busy, digits/0..9, beep, ...);
#   2. the number/date/time name space used by host/speech (say_number,
#      say_datetime): numbers/, days/, months/, ordinals/, words/;
#   3. one prompt per line of every plugins/*/prompts.txt, a file of
#      `name<TAB>text` lines (`#` starts a comment line, blank lines are
#      skipped; names may contain `/`, e.g. `voicemail/main-menu`).
#
# The script is idempotent: espeak-ng is deterministic and sox runs with -R
# (repeatable dither), so a rerun renders the same bytes and a file is only
# replaced when its bytes change. Plugin prompt files are checked
# completely (name syntax, duplicates, clashes with stock names) before any
# plugin prompt is written; any error fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
out=prompts/en
mkdir -p "$out"

tmpdir=$(mktemp -d)
trap 'rm -rf "$tmpdir"' EXIT

# Replaces dest only when the bytes differ, so a rerun leaves files untouched.
install_if_changed() { # src dest
  if ! cmp -s "$1" "$2"; then mv -f "$1" "$2"; fi
}

say() { # name text
  mkdir -p "$(dirname "$out/$1.wav")"
  # The text goes through a file, so a text starting with "-" is not an option.
  printf '%s' "$2" >"$tmpdir/text"
  espeak-ng -v en-us -s 150 -w "$tmpdir/raw.wav" -f "$tmpdir/text"
  sox -R "$tmpdir/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$tmpdir/out.wav" norm -3
  install_if_changed "$tmpdir/out.wav" "$out/$1.wav"
}

# --- 1. Original stock prompts (names and texts unchanged) -------------------
declare -A stock=()
stock_say() { stock[$1]=1; say "$1" "$2"; }
stock_say welcome "Welcome to plugboard. Please enter the extension you want to reach, followed by the hash key."
stock_say connecting "Connecting you now."
stock_say not-available "The person you called is not available. Please leave a message after the tone. Hang up when you are done."
stock_say busy "The person you called is busy. Please leave a message after the tone."
stock_say invalid "That extension is not valid."
stock_say goodbye "Thank you. Goodbye."
stock_say no-messages "You have no messages."
stock_say you-have "You have"
stock_say messages "messages."
stock_say message-from "Message from"
stock_say next-message "Press 1 for the next message, or hang up."
stock_say error "Sorry, an error occurred. Goodbye."
stock_say hello "Hello from plugboard."
for d in 0 1 2 3 4 5 6 7 8 9; do stock_say "digits/$d" "$d"; done
# 440 Hz beep, 300 ms.
stock[beep]=1
sox -R -n -r 8000 -c 1 -b 16 -e signed-integer "$tmpdir/beep.wav" synth 0.3 sine 440 vol 0.5
install_if_changed "$tmpdir/beep.wav" "$out/beep.wav"

# --- 2. Numbers, dates and times (host/speech) --------------------------------
# numbers/0..19, numbers/20,30..90, numbers/hundred|thousand|million|billion
units=(zero one two three four five six seven eight nine ten eleven twelve
  thirteen fourteen fifteen sixteen seventeen eighteen nineteen)
tens=([2]=twenty [3]=thirty [4]=forty [5]=fifty [6]=sixty [7]=seventy [8]=eighty [9]=ninety)
for n in "${!units[@]}"; do stock_say "numbers/$n" "${units[$n]}"; done
for t in "${!tens[@]}"; do stock_say "numbers/${t}0" "${tens[$t]}"; done
for w in hundred thousand million billion; do stock_say "numbers/$w" "$w"; done
# days/1..7 are ISO weekdays (1 = Monday).
days=([1]=Monday [2]=Tuesday [3]=Wednesday [4]=Thursday [5]=Friday [6]=Saturday [7]=Sunday)
for d in "${!days[@]}"; do stock_say "days/$d" "${days[$d]}"; done
months=([1]=January [2]=February [3]=March [4]=April [5]=May [6]=June [7]=July
  [8]=August [9]=September [10]=October [11]=November [12]=December)
for m in "${!months[@]}"; do stock_say "months/$m" "${months[$m]}"; done
# ordinals/1..31 (days of the month).
ord_units=([1]=first [2]=second [3]=third [4]=fourth [5]=fifth [6]=sixth [7]=seventh
  [8]=eighth [9]=ninth [10]=tenth [11]=eleventh [12]=twelfth [13]=thirteenth
  [14]=fourteenth [15]=fifteenth [16]=sixteenth [17]=seventeenth [18]=eighteenth
  [19]=nineteenth [20]=twentieth [30]=thirtieth)
for n in $(seq 1 31); do
  if [[ -n "${ord_units[$n]:-}" ]]; then
    text=${ord_units[$n]}
  else
    text="${tens[$((n / 10))]} ${ord_units[$((n % 10))]}"
  fi
  stock_say "ordinals/$n" "$text"
done
stock_say words/at "at"
stock_say words/oh "oh"
stock_say words/oclock "o'clock"

# --- 3. Plugin prompts: plugins/*/prompts.txt ----------------------------------
# Pass 1 checks every file; pass 2 writes. A bad line stops the script before
# any plugin prompt is written.
name_re='^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$'
declare -A plugin_src=()
plugin_names=()
plugin_texts=()
errors=0
shopt -s nullglob
for file in plugins/*/prompts.txt; do
  lineno=0
  while IFS= read -r line || [[ -n "$line" ]]; do
    lineno=$((lineno + 1))
    line=${line%$'\r'}
    [[ "$line" =~ ^[[:space:]]*(#.*)?$ ]] && continue
    if [[ "$line" != *$'\t'* ]]; then
      echo "$file:$lineno: expected name<TAB>text" >&2; errors=$((errors + 1)); continue
    fi
    name=${line%%$'\t'*}
    text=${line#*$'\t'}
    text=${text#"${text%%[![:space:]]*}"} # trim leading blanks
    if ! [[ "$name" =~ $name_re ]]; then
      echo "$file:$lineno: invalid prompt name '$name' (letters, digits, _ - and / between parts)" >&2
      errors=$((errors + 1)); continue
    fi
    if [[ -z "$text" ]]; then
      echo "$file:$lineno: prompt '$name' has no text" >&2; errors=$((errors + 1)); continue
    fi
    if [[ -n "${stock[$name]:-}" ]]; then
      echo "$file:$lineno: '$name' is a stock prompt; choose another name" >&2
      errors=$((errors + 1)); continue
    fi
    if [[ -n "${plugin_src[$name]:-}" ]]; then
      echo "$file:$lineno: '$name' already defined at ${plugin_src[$name]}" >&2
      errors=$((errors + 1)); continue
    fi
    plugin_src[$name]="$file:$lineno"
    plugin_names+=("$name")
    plugin_texts+=("$text")
  done <"$file"
done
if ((errors > 0)); then
  echo "$errors error(s) in plugin prompt files; plugin prompts not written" >&2
  exit 1
fi
for i in "${!plugin_names[@]}"; do say "${plugin_names[$i]}" "${plugin_texts[$i]}"; done

echo "prompts written to $out (${#stock[@]} stock, ${#plugin_names[@]} from plugins)"
