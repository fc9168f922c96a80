#!/usr/bin/env bash
# `make demo`: runs every subcommand that exists on the bundled example files and says what it did.
set -uo pipefail
bin=${1:-.venv/bin}
cd "$(dirname "$0")/.."
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

say "omniavsr doctor: what this machine can run (a missing model is expected until weights are installed)"
"$bin/omniavsr" doctor
echo "(doctor exit code: $?; 0 = ready for the default transcription, 7 = something above is missing)"

say "omniavsr score: system A against LRS3-style references, with a bootstrap confidence interval"
"$bin/omniavsr" score examples/score/system-a.txt examples/score/reference.txt --ci || exit

say "omniavsr score --report align: where system A's errors are"
"$bin/omniavsr" score examples/score/system-a.txt examples/score/reference.txt --report align || exit

say "omniavsr score --compare: is system B worse than system A on the same references?"
"$bin/omniavsr" score examples/score/system-a.txt examples/score/reference.txt --compare examples/score/system-b.txt || exit

say "omniavsr prep-lips: mouth crops of a real face (matplotlib's portrait, moved into a 4-s clip with speech-like audio)"
work=$(mktemp -d)
"$bin/python" examples/lips/make_face_clip.py "$work/face.mp4" 4 || exit
"$bin/omniavsr" prep-lips "$work/face.mp4" -o "$work/rois" --debug-crops || exit
ls "$work/rois"
head -c 400 "$work/rois/prep.jsonl"; echo

say "omniavsr weights list: the known models and what is installed"
"$bin/omniavsr" weights list || exit

say "omniavsr transcribe: the face clip, audio and lips together (mode auto), with the default model"
"$bin/omniavsr" transcribe "$work/face.mp4" -o "$work/transcripts" -f txt,srt,json --beams 4
status=$?
model_used="the default model (omni-avsr-st)"
if [ "$status" = 5 ]; then
    echo "The default model is not installed on this machine (the line above says how to get it)."
    echo "So the demo makes a small RANDOM-WEIGHT model in the native format and transcribes with it:"
    echo "the pipeline is the real one (VAD, face tracking, mouth crops, batched decoding, writers),"
    echo "the words are noise."
    "$bin/python" -c 'import sys; from pathlib import Path; from omniavsr_cli.model.random_init import save_random_model, small_config; save_random_model(Path(sys.argv[1]), small_config())' "$work/random-model" || exit
    "$bin/omniavsr" transcribe "$work/face.mp4" --model "$work/random-model" -o "$work/transcripts" -f txt,srt,json --beams 4 || exit
    model_used="a random-weight model made by this demo ($work/random-model), because no trained model is installed"
elif [ "$status" != 0 ]; then
    exit "$status"
fi
echo "-- $work/transcripts/face.srt:"
cat "$work/transcripts/face.srt"
echo "-- modes per segment: $("$bin/python" -c 'import json,sys; print([s["mode"] for s in json.load(open(sys.argv[1]))["segments"]])' "$work/transcripts/face.json")"

say "Done: scored examples/score/system-{a,b}.txt against examples/score/reference.txt (normaliser lrs3);"
echo "prepared the mouth crops of a face clip in $work/rois (open face.crops.png to see them);"
echo "transcribed it with $model_used into $work/transcripts. See docs/ for each subcommand."
