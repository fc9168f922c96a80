#!/usr/bin/env bash
# The demo model's recipe, from nothing, with the project's own tools: the synthetic corpus, its mouth crops,
# training from scratch, and the held-out evaluation. About 100 minutes on 2 CPU cores (no GPU): 15 for the data,
# 80 for training, 5 for evaluation. Every step is deterministic and resumable (rerun the script after an interruption).
# Training runs in three stages, each `omniavsr train` starting from the last one's model (why: docs/synth-corpus.md):
#   1. ASR alone at audio rate 4: a model trained from scratch must first learn to read the audio tokens at
#      all; with every rate and task from the first step it stays at the grammar's entropy.
#   2. all three tasks, audio rates 4 and 16, video rate 2, with babble mixed in at 0 and 10 dB;
#   3. every rate of both encoders, at a lower learning rate, ASR weighted double (its rate 16 lags most).
#
#   tools/make_demo_model.sh WORK_DIR        then copy WORK_DIR/run/model into weights/demo
set -euo pipefail
work=${1:?usage: tools/make_demo_model.sh WORK_DIR}
bin=${BIN:-.venv/bin}

"$bin/omniavsr" synth-corpus "$work/corpus-train" --clips 3000 --seed 1 --split train
"$bin/omniavsr" synth-corpus "$work/corpus-test" --clips 200 --seed 2 --split test
# FaceMesh finds the face in every clip, exactly as for real video (the generator's own landmarks would do too:
# --detector landmarks:DIR/clips, about twice as fast).
"$bin/omniavsr" prep-lips "$work/corpus-train/clips" -o "$work/rois-train" --manifest --workers 2
"$bin/omniavsr" prep-lips "$work/corpus-test/clips" -o "$work/rois-test" --manifest --workers 2
# The bundled clips: examples/demo/grid-example.mp4 (s3-000000) and tests/data/demo (s4-*), held-out sentences too.
"$bin/omniavsr" synth-corpus "$work/example" --clips 1 --seed 3 --split test --sentences 3
"$bin/omniavsr" synth-corpus "$work/heldout-bundle" --clips 24 --seed 4 --split test

test -f "$work/init/config.json" || "$bin/python" tools/init_demo_model.py "$work/init"
common=(--unfreeze audio-encoder,video-encoder,llm --no-augment --epochs 1000 --max-frames 1000 --warmup-steps 100
        --weight-decay 0.01 --save-every 500 --average-last 1 --seed 7 --workers 1)
noise=(--noise "$work/corpus-train/babble.wav" --snrs=0,10,clean,clean)
"$bin/omniavsr" train "$work/rois-train/manifest.csv" -o "$work/stage1" --model "$work/init" "${common[@]}" \
    --task-weights 1,0,0 --rates 4/2 --max-steps 1500 --lr 1e-3
"$bin/omniavsr" train "$work/rois-train/manifest.csv" -o "$work/stage2" --model "$work/stage1/model" "${common[@]}" "${noise[@]}" \
    --task-weights 1,2,1 --rates 4,16/2 --max-steps 1200 --lr 1e-3
"$bin/omniavsr" train "$work/rois-train/manifest.csv" -o "$work/run" --model "$work/stage2/model" "${common[@]}" "${noise[@]}" \
    --task-weights 2,1,1 --max-steps 600 --lr 5e-4

"$bin/omniavsr" eval "$work/rois-test/manifest.csv" --model "$work/run/model" -o "$work/eval-clean"
"$bin/omniavsr" eval "$work/rois-test/manifest.csv" --model "$work/run/model" --tasks asr,avsr \
    --snr 0 --noise "$work/corpus-test/babble.wav" -o "$work/eval-0db"
