#!/usr/bin/env bash
# The demo model's recipe, from nothing, with the project's own tools: the synthetic corpus, its mouth crops,
# training from scratch, and the held-out evaluation. About 85 minutes on 2 CPU cores (no GPU): 15 for the data,
# 69 for training, 2 for evaluation. Every step is deterministic and resumable (rerun the script after an interruption).
# Training runs in seven stages, each `omniavsr train` starting from the last one's model (why: docs/synth-corpus.md):
#   1. ASR alone at audio rate 4: a model trained from scratch must first learn to read the audio tokens at
#      all; with every rate and task from the first step it stays at the grammar's entropy.
#   2. ASR alone at audio rates 4 and 16, and 3. the same again over another data order (a second cosine cycle):
#      rate 16 (about one token a word) is learned once rate 4 is, and far faster alone than among all tasks.
#   4. all three tasks, audio rates 4 and 16, video rate 2, with babble mixed in at 0 and 10 dB;
#   5. every rate of both encoders with the paper's task weights, at a lower learning rate;
#   6. all three tasks at the coarse audio rate 16 only (with video rates 2 and 5), at a lower one still;
#   7. ASR alone at audio rate 16 with only the audio encoder unfrozen besides the adapters, so that the
#      LLM, which lip reading shares, stays as it is.
# Decoded clips are cached in WORK_DIR/clip-cache (5 GB): decoding them again each epoch would double stage 1.
#
# The last stage's WORK_DIR/run/model is complete (every tensor, no base model), so shipping it is a copy; the
# script does it when given the destination, which keeps its MODEL_CARD.md:
#
#   tools/make_demo_model.sh WORK_DIR [weights/demo]
set -euo pipefail
work=${1:?usage: tools/make_demo_model.sh WORK_DIR [DESTINATION]}
destination=${2:-}
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
common=(--no-augment --epochs 1000 --max-frames 1000 --weight-decay 0.01 --save-every 500 --average-last 1
        --workers 0 --cache "$work/clip-cache")
everything=(--unfreeze audio-encoder,video-encoder,llm --warmup-steps 100)
noise=(--noise "$work/corpus-train/babble.wav" --snrs=0,10,clean,clean)
train() { "$bin/omniavsr" train "$work/rois-train/manifest.csv" "${common[@]}" "$@"; }
train -o "$work/stage1" --model "$work/init" "${everything[@]}" --task-weights 1,0,0 --rates 4/2 --max-steps 1500 --lr 1e-3 --seed 7
train -o "$work/stage2" --model "$work/stage1/model" "${everything[@]}" --task-weights 1,0,0 --rates 4,16/2 --max-steps 1500 --lr 1e-3 --seed 7
train -o "$work/stage3" --model "$work/stage2/model" "${everything[@]}" --task-weights 1,0,0 --rates 4,16/2 --max-steps 1500 --lr 1e-3 --seed 8
train -o "$work/stage4" --model "$work/stage3/model" "${everything[@]}" "${noise[@]}" --task-weights 1,2,1 --rates 4,16/2 --max-steps 1200 --lr 1e-3 --seed 7
train -o "$work/stage5" --model "$work/stage4/model" "${everything[@]}" "${noise[@]}" --task-weights 1,1.5,1 --max-steps 600 --lr 5e-4 --seed 7
train -o "$work/stage6" --model "$work/stage5/model" "${everything[@]}" "${noise[@]}" --task-weights 1,1,1 --rates 16/2,5 --max-steps 600 --lr 3e-4 --seed 7
train -o "$work/run" --model "$work/stage6/model" --unfreeze audio-encoder --warmup-steps 50 --task-weights 1,0,0 --rates 16/2 --max-steps 600 --lr 3e-4 --seed 7

test_set=("$work/rois-test/manifest.csv" --model "$work/run/model" --cache "$work/clip-cache")
"$bin/omniavsr" eval "${test_set[@]}" -o "$work/eval-clean"
"$bin/omniavsr" eval "${test_set[@]}" --tasks asr,avsr \
    --snr 0 --noise "$work/corpus-test/babble.wav" -o "$work/eval-0db"

if [ -n "$destination" ]; then
    mkdir -p "$destination"
    cp "$work/run/model/"{config.json,model.safetensors,tokenizer.json,tokenizer_config.json,checksums.json} "$destination/"
    "$bin/omniavsr" weights verify "$destination"
fi
