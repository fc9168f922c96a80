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

say "omniavsr prep-lips: mouth crops of a real face (matplotlib's portrait, moved into a 2-s clip)"
work=$(mktemp -d)
"$bin/python" examples/lips/make_face_clip.py "$work/face.mp4" || exit
"$bin/omniavsr" prep-lips "$work/face.mp4" -o "$work/rois" --debug-crops || exit
ls "$work/rois"
head -c 400 "$work/rois/prep.jsonl"; echo

say "omniavsr weights list: the known models and what is installed"
"$bin/omniavsr" weights list || exit

say "Done: scored examples/score/system-{a,b}.txt against examples/score/reference.txt (normaliser lrs3);"
echo "prepared the mouth crops of a face clip in $work/rois (open face.crops.png to see them)."
echo "Transcription (omniavsr transcribe) needs installed weights (docs/checkpoint-format.md); see docs/ for each subcommand."
