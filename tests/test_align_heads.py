"""Calibrated alignment heads: stored in config.json, found by `omniavsr align-heads` (greedy selection over one
all-heads pass per clip and cell), written with config.json's checksum; the demo model ships its set."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from faces import speech_like, write_media
from helpers import REPO, run_cli

from omniavsr_cli import alignment
from omniavsr_cli.errors import InputError, ModelUnavailable, UsageError
from omniavsr_cli.model.config import OmniAVSRConfig
from omniavsr_cli.model.loading import load_model
from omniavsr_cli.model.omni import Clip
from omniavsr_cli.model.random_init import save_random_model, small_config
from omniavsr_cli.scoring.word_times import WordTime
from omniavsr_cli.weights import sha256_of, verify

# Words of the random model's tokenizer (random_init.WORDS), so that each is one token of its own.
CLIPS = {
    "c0": (1.6, "the and to", [(0.2, 0.5), (0.6, 0.9), (1.0, 1.4)]),
    "c1": (2.0, "it is what it was", [(0.1, 0.4), (0.45, 0.7), (0.8, 1.1), (1.2, 1.4), (1.5, 1.9)]),
    "c2": (1.2, "we are", [(0.2, 0.5), (0.6, 1.0)]),
}
TINY = small_config()
EVERY = [(layer, head) for layer in range(TINY.llm.num_hidden_layers) for head in range(TINY.llm.num_attention_heads)]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A random-weight model and a prep-lips style set: rois/spk1/<clip>.mp4 + .wav, test.csv, words.json."""
    root = tmp_path_factory.mktemp("align-heads")
    save_random_model(root / "model", TINY, seed=1)
    folder = root / "rois" / "spk1"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    words = {}
    for name, (seconds, text, spans) in CLIPS.items():
        write_media(folder / f"{name}.mp4", rng.integers(0, 255, (round(seconds * 25), 96, 96, 3), dtype=np.uint8), None)
        write_media(folder / f"{name}.wav", None, speech_like(spans, seconds))
        words[f"spk1/{name}"] = [{"word": word, "start": s, "end": e} for word, (s, e) in zip(text.split(), spans)]
    (root / "rois" / "test.csv").write_text("".join(f"rois,spk1/{n}.mp4,{round(s * 25)},,{t}\n" for n, (s, t, _) in CLIPS.items()))
    (root / "words.json").write_text(json.dumps(words))
    return root


@pytest.fixture
def model_copy(work, tmp_path):
    return shutil.copytree(work / "model", tmp_path / "model")


def _align_heads(work, model, *arguments: str):
    result = run_cli(
        "align-heads", str(work / "rois" / "test.csv"), "--word-times", str(work / "words.json"), "--model", str(model), *arguments
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def _chosen(stdout: str) -> list[tuple[int, int]]:
    [line] = [line for line in stdout.splitlines() if line.startswith("chosen: ")]
    names = line.removeprefix("chosen: ").split(" (")[0].split(", ")
    return [tuple(int(n) for n in name.split(".")) for name in names]


def _files(directory) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


# ---------------------------------------------------------------------------------------------- config


def test_alignment_heads_round_trip_through_config_json_as_pairs(tmp_path):
    config = OmniAVSRConfig.from_dict({**TINY.to_dict(), "alignment_heads": [[1, 2], [0, 3], [1, 2]]})
    assert config.alignment_heads == ((0, 3), (1, 2))  # sorted, each once
    path = config.save(tmp_path)
    assert json.loads(path.read_text())["alignment_heads"] == [[0, 3], [1, 2]]
    assert OmniAVSRConfig.load(tmp_path) == config


def test_a_config_json_without_alignment_heads_still_loads_uncalibrated(tmp_path):
    data = TINY.to_dict()
    del data["alignment_heads"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert OmniAVSRConfig.load(tmp_path).alignment_heads is None


@pytest.mark.parametrize(
    "heads, message",
    [
        ([[2, 0]], r"\(2, 0\) is not in an LLM of 2 layers x 4 heads"),
        ([[0, 4]], r"\(0, 4\) is not in an LLM"),
        ([[0, -1]], r"\(0, -1\) is not in an LLM"),
        ([[0]], "not a \\[layer, head\\] pair"),
        ([[0, 1.0]], "not a \\[layer, head\\] pair of whole numbers"),
        ([[True, 1]], "not a \\[layer, head\\] pair of whole numbers"),
        ([], "non-empty list"),
        ("0,1", "non-empty list"),
    ],
)
def test_alignment_heads_outside_the_llm_or_malformed_are_refused(heads, message):
    with pytest.raises(ValueError, match=message):
        OmniAVSRConfig.from_dict({**TINY.to_dict(), "alignment_heads": heads})


def test_a_model_whose_config_has_bad_heads_is_a_damaged_model(model_copy):
    data = json.loads((model_copy / "config.json").read_text())
    (model_copy / "config.json").write_text(json.dumps(data | {"alignment_heads": [[5, 0]]}))
    with pytest.raises(ModelUnavailable, match="not a usable model config .*alignment_heads"):
        load_model(model_copy)


def test_heads_for_gives_the_stored_heads_or_the_default():
    assert alignment.heads_for(TINY) == (alignment.default_heads(TINY), False)
    calibrated = OmniAVSRConfig.from_dict({**TINY.to_dict(), "alignment_heads": [[0, 2], [1, 0]]})
    assert alignment.heads_for(calibrated) == ([(0, 2), (1, 0)], True)


# ------------------------------------------------------------------------------------------ library


def test_clip_ids_match_word_times_of_lrs3_and_synth_corpus():
    corpus = ["s13-000000", "s13-000001"]
    assert alignment.match_word_times(["rois/s13-000001", "rois/other"], corpus) == {"rois/s13-000001": "s13-000001"}
    # prep-lips and read_word_times given the same LRS3 folder; then the whole tree to one and a part to the other
    lrs3 = ["spkA/00001", "spkB/00001"]
    assert alignment.match_word_times(["rois/spkA/00001"], lrs3) == {"rois/spkA/00001": "spkA/00001"}
    assert alignment.match_word_times(["rois/pretrain/spkB/00001"], lrs3) == {"rois/pretrain/spkB/00001": "spkB/00001"}
    assert alignment.match_word_times(["rois/spkB/00001"], ["pretrain/spkB/00001"]) == {"rois/spkB/00001": "pretrain/spkB/00001"}
    # two word-times ids end the same way: ambiguous, no match; a clip never matches a mere clip number
    assert alignment.match_word_times(["rois/spkB/00001"], ["pretrain/spkB/00001", "trainval/spkB/00001"]) == {}
    assert alignment.match_word_times(["rois/spkC/00001"], lrs3) == {}


def test_default_cells_are_every_task_at_the_finest_and_the_coarsest_rates():
    labels = [cell.label for cell in alignment.default_cells(TINY)]
    assert labels == ["ASR 4", "ASR 16", "VSR 2", "VSR 5", "AV 4,2", "AV 16,5"]
    with pytest.raises(UsageError, match="audio rate 8"):
        alignment.check_cells(TINY, [("asr", (8, 2))])
    with pytest.raises(UsageError, match="unknown task"):
        alignment.check_cells(TINY, [("lips", (4, 2))])


def _labelled(work, loads: list | None = None):
    from omniavsr_cli.model.transforms import video_input
    from omniavsr_cli.training.data import load_example, read_manifest

    def loader(example):
        def load():
            if loads is not None:
                loads.append(example.id)
            audio, crops = load_example(example)
            return Clip(audio, video_input(crops))

        return load

    examples = read_manifest(work / "rois" / "test.csv").examples
    words = json.loads((work / "words.json").read_text())
    times = {e.id: [WordTime(w["word"], w["start"], w["end"]) for w in words[e.id.removeprefix("rois/")]] for e in examples}
    return [alignment.LabelledClip(e.id, e.text, loader(e)) for e in examples], times


def test_calibration_makes_one_all_heads_pass_per_clip_and_cell_then_grows_the_set_greedily(work, monkeypatch):
    model = load_model(work / "model")
    passes, loads = [], []
    real = alignment.attention_to_prefix
    monkeypatch.setattr(alignment, "attention_to_prefix", lambda *a: passes.append((a[4], a[5], a[3])) or real(*a))
    examples, times = _labelled(work, loads)
    cells = [("asr", (4, 2)), ("avsr", (16, 5))]
    report = alignment.calibrate_heads(model, examples, times, cells, max_heads=3)

    assert sorted(loads) == ["rois/spk1/c0", "rois/spk1/c1", "rois/spk1/c2"]  # each clip loaded once for both cells
    assert len(passes) == 6 and all(heads == EVERY for _, heads, _ in passes)
    tokenizer = model.tokenizer
    assert passes[0][2] == [tokenizer("the and to", add_special_tokens=False).input_ids + [TINY.tokens.eos]]
    assert [cell.label for cell in report.cells] == ["ASR 4", "AV 16,5"] and report.clips == 3

    assert [single.heads for single in report.singles] == [(pair,) for pair in EVERY]
    assert all(f.words == 10 for single in report.singles for f in single.figures)  # every word of the three clips, in each cell
    assert report.everything.heads == tuple(EVERY) and report.default.heads == tuple(alignment.default_heads(TINY))
    # greedy: the best head alone first, then one head more per step, each step lowering the error
    assert report.steps[0].error == min(single.error for single in report.singles)
    for before, after in zip(report.steps, report.steps[1:]):
        assert set(before.heads) < set(after.heads) and len(after.heads) == len(before.heads) + 1 and after.error < before.error
    assert 1 <= len(report.steps) <= 3 and report.chosen == report.steps[-1].heads


def test_calibration_stops_at_max_heads_and_a_set_error_is_the_mean_of_the_cells_medians(work):
    model = load_model(work / "model")
    examples, times = _labelled(work)
    report = alignment.calibrate_heads(model, examples, times, [("vsr", (4, 2)), ("asr", (16, 2))], max_heads=1)
    assert len(report.chosen) == 1
    best = report.steps[0]
    assert best.error == pytest.approx(np.mean([f.median for f in best.figures]))


def test_calibration_skips_clips_without_word_times_and_needs_one_clip_per_cell(work):
    model = load_model(work / "model")
    examples, times = _labelled(work)
    del times["rois/spk1/c2"]
    report = alignment.calibrate_heads(model, examples, times, [("asr", (4, 2))], max_heads=1)
    assert report.skipped == [("rois/spk1/c2", "no word times")] and report.clips == 2
    with pytest.raises(InputError, match="no clip could be aligned in ASR 4") as raised:
        alignment.calibrate_heads(model, examples, {}, [("asr", (4, 2))])
    assert raised.value.code == "E_NO_CLIPS"


def test_store_heads_changes_only_config_json_and_its_checksum(model_copy):
    before = _files(model_copy)
    alignment.store_heads(model_copy, [(1, 3), (0, 1)])
    after = _files(model_copy)
    assert verify(model_copy) == []
    assert {name for name in before if before[name] != after[name]} == {"config.json", "checksums.json"}
    old, new = json.loads(before["config.json"]), json.loads(after["config.json"])
    assert new == old | {"alignment_heads": [[1, 3], [0, 1]]} and list(new)[: len(old)] == list(old)
    assert json.loads(after["checksums.json"]) == json.loads(before["checksums.json"]) | {
        "config.json": sha256_of(model_copy / "config.json")
    }
    assert load_model(model_copy).config.alignment_heads == ((0, 1), (1, 3))
    with pytest.raises(ValueError, match="not in an LLM"):
        alignment.store_heads(model_copy, [(9, 9)])
    assert _files(model_copy) == after


def test_store_heads_refuses_a_damaged_model(model_copy):
    (model_copy / "tokenizer.json").write_text("{}")
    before = (model_copy / "config.json").read_bytes()
    with pytest.raises(ModelUnavailable, match="checksum mismatch"):
        alignment.store_heads(model_copy, [(0, 0)])
    assert (model_copy / "config.json").read_bytes() == before


# ---------------------------------------------------------------------------------------------- command


def test_align_heads_stores_the_chosen_heads_and_weights_verify_still_passes(work, model_copy):
    weights = (model_copy / "model.safetensors").read_bytes()
    code, stdout, stderr = _align_heads(work, model_copy, "--cells", "asr:4,avsr:16,5", "--max-heads", "2")
    assert code == 0, stderr
    table = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert [cell.strip() for cell in table[0].split("|")[1:-1]] == ["heads", "ASR 4", "AV 16,5", "error"]
    assert [row.split("|")[1].strip() for row in table[1:9]] == [f"{layer}.{head}" for layer, head in EVERY]
    chosen = _chosen(stdout)
    assert 1 <= len(chosen) <= 2 and f"stored in {model_copy / 'config.json'}" in stdout
    assert json.loads((model_copy / "config.json").read_text())["alignment_heads"] == [list(pair) for pair in sorted(chosen)]
    assert (model_copy / "model.safetensors").read_bytes() == weights
    result = run_cli("weights", "verify", str(model_copy))
    assert result.returncode == 0, result.stderr
    assert alignment.heads_for(load_model(model_copy).config) == (sorted(chosen), True)
    assert "align-heads: 3 clips in 2 cells; 0 without word times" in stderr


def test_dry_run_prints_the_heads_and_changes_nothing(work, model_copy):
    before = _files(model_copy)
    code, stdout, stderr = _align_heads(work, model_copy, "--cells", "vsr:2", "--max-heads", "1", "--dry-run")
    assert code == 0, stderr
    assert len(_chosen(stdout)) == 1 and "stored in" not in stdout and "dry run: nothing stored" in stderr
    assert _files(model_copy) == before


def test_missing_word_times_is_one_line_and_exit_2(work, model_copy):
    result = run_cli("align-heads", str(work / "rois" / "test.csv"), "--word-times", str(work / "nowhere.json"), "--model", str(model_copy))
    assert result.returncode == 2
    assert result.stderr.decode() == f"omniavsr: error: {work / 'nowhere.json'}: no such file or directory; check the path\n"


def test_word_times_of_other_clips_are_one_line_and_exit_2(work, model_copy, tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"s7-000000": [{"word": "set", "start": 0.1, "end": 0.3}]}))
    result = run_cli(
        "align-heads", str(work / "rois" / "test.csv"), "--word-times", str(tmp_path / "other.json"), "--model", str(model_copy)
    )
    assert result.returncode == 2
    [line] = result.stderr.decode().splitlines()
    assert "none of the 3 clips" in line and "'rois/spk1/c0'" in line and "'s7-000000'" in line


def test_word_times_past_their_clips_end_are_left_out_and_none_that_fit_is_exit_2(work, model_copy, tmp_path):
    words = json.loads((work / "words.json").read_text())
    late = {clip: [{**word, "start": word["start"] + 100, "end": word["end"] + 100} for word in times] for clip, times in words.items()}
    (tmp_path / "late.json").write_text(json.dumps(late))
    result = run_cli(
        "align-heads", str(work / "rois" / "test.csv"), "--word-times", str(tmp_path / "late.json"), "--model", str(model_copy)
    )
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 2 and "3 clips left out: their word times run past the clip's end" in lines[0]
    assert "no clip of" in lines[-1] and "can hold its word times" in lines[-1]
    (tmp_path / "mixed.json").write_text(json.dumps({**words, "spk1/c0": late["spk1/c0"]}))
    result = run_cli(
        "align-heads",
        str(work / "rois" / "test.csv"),
        "--word-times",
        str(tmp_path / "mixed.json"),
        "--model",
        str(model_copy),
        "--dry-run",
    )
    assert result.returncode == 0 and "1 clips left out" in result.stderr.decode()


def test_a_read_only_model_is_refused_before_any_pass(work, model_copy, monkeypatch):
    before = _files(model_copy)
    os.chmod(model_copy, 0o555)
    try:
        if os.access(model_copy, os.W_OK):  # root writes anywhere: the check sees what a user's chmod would show
            real = os.access
            monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if mode == os.W_OK else real(path, mode, **kw))
        monkeypatch.setattr(alignment, "attention_to_prefix", lambda *a: pytest.fail("a pass ran"))
        code, stdout, stderr = _align_heads(work, model_copy)
    finally:
        os.chmod(model_copy, 0o755)
    assert code == 2 and stdout == ""
    [line] = stderr.splitlines()[1:]  # after the model's status line
    assert line.startswith(f"omniavsr: error: {model_copy}: the model's folder is read-only") and "--dry-run" in line and "--model" in line
    assert _files(model_copy) == before


def test_a_damaged_model_is_refused_with_exit_5(work, model_copy):
    (model_copy / "tokenizer_config.json").write_text("{}")
    code, _, stderr = _align_heads(work, model_copy)
    assert code == 5 and "checksum mismatch" in stderr and "omniavsr weights verify" in stderr


@pytest.mark.parametrize(
    "cells, message",
    [("asr:4,2", "--cells asr:4,2: give each cell as"), ("lips:4", "--cells lips:4"), ("asr:8", "--cells: asr at audio rate 8")],
)
def test_bad_cells_are_one_line_and_exit_2(work, model_copy, cells, message):
    code, _, stderr = _align_heads(work, model_copy, "--cells", cells, "--dry-run")
    assert code == 2 and message in stderr.splitlines()[-1]


def test_clips_that_cannot_be_read_in_any_cell_exit_4(work, model_copy, tmp_path):
    rois = tmp_path / "rois"
    shutil.copytree(work / "rois", rois)
    for video in (rois / "spk1").glob("*.mp4"):
        video.write_bytes(b"not a video")
    result = run_cli(
        "align-heads", str(rois / "test.csv"), "--word-times", str(work / "words.json"), "--model", str(model_copy), "--dry-run"
    )
    assert result.returncode == 4
    assert "no clip could be aligned in ASR 4" in result.stderr.decode().splitlines()[-1]


# ---------------------------------------------------------------------------------------------- demo model


def test_the_demo_model_ships_calibrated_heads():
    demo = REPO / "weights" / "demo"
    config = OmniAVSRConfig.load(demo)  # validates the heads against its LLM
    heads, calibrated = alignment.heads_for(config)
    assert calibrated and heads and heads != alignment.default_heads(config)
    assert verify(demo) == []
    card = (demo / "MODEL_CARD.md").read_text()
    assert "omniavsr align-heads" in card and ", ".join(f"{layer}.{head}" for layer, head in heads) in card
