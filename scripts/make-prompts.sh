#!/usr/bin/env bash
# Generates the stock English prompts as 8 kHz mono 16-bit PCM WAV files with
# espeak-ng and sox (Debian packages espeak-ng, sox). The output is committed
# under prompts/en/, so running the PBX never needs these tools.
set -euo pipefail
cd "$(dirname "$0")/.."
out=prompts/en
mkdir -p "$out/digits"
say() { # name text
  local tmp; tmp=$(mktemp --suffix .wav)
  espeak-ng -v en-us -s 150 -w "$tmp" "$2"
  sox "$tmp" -r 8000 -c 1 -b 16 -e signed-integer "$out/$1.wav" norm -3
  rm -f "$tmp"
}
say welcome "Welcome to plugboard. Please enter the extension you want to reach, followed by the hash key."
say connecting "Connecting you now."
say not-available "The person you called is not available. Please leave a message after the tone. Hang up when you are done."
say busy "The person you called is busy. Please leave a message after the tone."
say invalid "That extension is not valid."
say goodbye "Thank you. Goodbye."
say no-messages "You have no messages."
say you-have "You have"
say messages "messages."
say message-from "Message from"
say next-message "Press 1 for the next message, or hang up."
say error "Sorry, an error occurred. Goodbye."
say hello "Hello from plugboard."
for d in 0 1 2 3 4 5 6 7 8 9; do say "digits/$d" "$d"; done
# 440 Hz beep, 300 ms.
sox -n -r 8000 -c 1 -b 16 -e signed-integer "$out/beep.wav" synth 0.3 sine 440 vol 0.5
echo "prompts written to $out"
