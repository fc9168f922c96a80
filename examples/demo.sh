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

say "Done: scored examples/score/system-{a,b}.txt against examples/score/reference.txt (normaliser lrs3)."
echo "Transcription (omniavsr transcribe) arrives with the model; see docs/ for each subcommand."
