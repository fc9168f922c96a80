#!/usr/bin/env bash
# `make demo`: transcribes a bundled synthetic clip with the demo model that ships in weights/demo, then shows
# the other subcommands on the bundled examples.
set -uo pipefail
bin=${1:-.venv/bin}
cd "$(dirname "$0")/.."
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
work=$(mktemp -d)
clip=examples/demo/grid-example.mp4
model=demo

say "omniavsr transcribe: an 8-s talking face saying three sentences, audio and lips together (AVSR), with the demo model ($model)"
echo "(the clip was made by omniavsr synth-corpus from sentences the demo model never heard in training)"
"$bin/omniavsr" transcribe "$clip" --model "$model" --mode avsr -o "$work/transcripts" -f srt,json || exit
echo "-- $work/transcripts/grid-example.srt:"
cat "$work/transcripts/grid-example.srt"
echo "-- transcript: $("$bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["text"])' "$work/transcripts/grid-example.json")"
echo "-- reference:  $(cat examples/demo/grid-example.txt)"

say "omniavsr score: that transcript against the reference"
"$bin/omniavsr" score "$work/transcripts/grid-example.json" examples/demo/grid-example.txt --report align || exit

say "omniavsr transcribe --mode vsr: the same clip from the lips alone (harder: b, p and m look the same)"
"$bin/omniavsr" transcribe "$clip" --model "$model" --mode vsr -o "$work/lips-only" -f txt --quiet || exit
cat "$work/lips-only/grid-example.txt"

say "omniavsr prep-lips: the 96x96 mouth crops the model saw (open grid-example.crops.png)"
"$bin/omniavsr" prep-lips "$clip" -o "$work/rois" --debug-crops || exit
ls "$work/rois"

say "omniavsr score --compare: is system B worse than system A on the same LRS3-style references?"
"$bin/omniavsr" score examples/score/system-a.txt examples/score/reference.txt --compare examples/score/system-b.txt || exit

say "omniavsr weights list / doctor: what this machine has (the released models need a manual download)"
"$bin/omniavsr" weights list || exit
"$bin/omniavsr" doctor
echo "(doctor exit code: $?; 7 = the default released model is not installed, which the demo above did not need)"

say "Done: outputs in $work. The synthetic corpus and the demo model's recipe: docs/synth-corpus.md, tools/make_demo_model.sh"
