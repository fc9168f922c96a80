"""`omniavsr eval` on a small random-weight model and three short clips made here with the real ffmpeg: the
table's cells, WERs equal to `omniavsr score` on the written files and to the model's own transcripts,
skipped clips, noisy evaluation, subsets and errors."""

import json
from dataclasses import replace

import jiwer
import numpy as np
import pytest
from faces import speech_like, write_media
from helpers import run_cli
from typer.testing import CliRunner

from omniavsr_cli.cli import app
from omniavsr_cli.decoding import DecodingOptions
from omniavsr_cli.model.loading import load_model
from omniavsr_cli.model.omni import Clip
from omniavsr_cli.model.random_init import save_random_model, small_config
from omniavsr_cli.model.transforms import video_input
from omniavsr_cli.scoring import score
from omniavsr_cli.training import evaluate as evaluate_module
from omniavsr_cli.training.data import load_example, read_manifest
from omniavsr_cli.training.evaluate import EvalOptions, evaluate

ALL_CELLS = ["ASR 4", "ASR 16", "VSR 2", "VSR 5", "AV 4,2", "AV 4,5", "AV 16,2", "AV 16,5"]
CLIPS = {"c0": (1.2, "the cat sat"), "c1": (1.6, "A dog and THE w57"), "c2": (2.0, "it is what it was")}
FAST = ["--beams", "1"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    save_random_model(root / "model", small_config(), seed=1)
    folder = root / "data" / "rois" / "spk1"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, (seconds, _) in CLIPS.items():
        write_media(folder / f"{name}.mp4", rng.integers(0, 255, (round(seconds * 25), 96, 96, 3), dtype=np.uint8), None)
        write_media(folder / f"{name}.wav", None, speech_like([(0.1, seconds - 0.1)], seconds))
    write_media(folder / "short.mp4", rng.integers(0, 255, (50, 96, 96, 3), dtype=np.uint8), None)
    write_media(folder / "short.wav", None, speech_like([(0.1, 0.9)], 1.0))  # half as long as its video
    write_media(root / "babble.wav", None, (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32))
    lines = [f"rois,spk1/{name}.mp4,{round(seconds * 25)},,{text}\n" for name, (seconds, text) in CLIPS.items()]
    (root / "data" / "rois" / "test.csv").write_text("".join(lines), encoding="utf-8")
    return root


def _eval(work, *arguments: str):
    return CliRunner().invoke(app, ["eval", str(work / "data" / "rois" / "test.csv"), "--model", str(work / "model"), *FAST, *arguments])


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


class _Recording:
    """The real model, keeping every clip it is asked to decode, by task."""

    def __init__(self, module):
        self.model, self.clips = module, {}

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, clips, task, *args):
        self.clips.setdefault(task, []).extend(clips)
        return self.model.generate(clips, task, *args)


def test_the_table_has_every_cell_and_score_rescores_the_written_files_to_the_same_wer(work, tmp_path):
    out = tmp_path / "out"
    result = _eval(work, "-o", str(out), "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    header, rule, row = result.stdout.splitlines()
    assert _cells(header) == ["model", *ALL_CELLS, "Avg"] and set(_cells(rule)[0]) == {"-"}

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    cells = results["cells"]
    assert [cell["label"] for cell in cells] == ALL_CELLS and results["clips"] == {"evaluated": 3, "skipped": []}
    assert _cells(row) == ["model", *(f"{cell['wer'] * 100:.1f}" for cell in cells), f"{results['average_wer'] * 100:.1f}"]
    assert results["average_wer"] == pytest.approx(sum(cell["wer"] for cell in cells) / 8)
    assert results["normalizer"]["name"] == "lrs3" and results["decoding"]["num_beams"] == 1
    for cell in cells:
        report = score(out / f"{cell['name']}.jsonl", out / "reference.jsonl", normalizer="lrs3")
        assert report.pairing == "id" and len(report.systems[0].utterances) == cell["utterances"] == 3
        assert report.systems[0].wer == cell["wer"] and report.systems[0].words.errors == cell["errors"]
    assert report.systems[0].words.reference_length == 3 + 5 + 5
    assert sorted(p.name for p in out.iterdir()) == sorted(["reference.jsonl", "results.json", *(f"{c['name']}.jsonl" for c in cells)])


def test_a_cell_is_the_corpus_wer_of_the_model_own_transcripts_and_each_clip_is_loaded_once(work, monkeypatch):
    model = load_model(work / "model", attn_implementation="eager")
    loads = []
    monkeypatch.setattr(evaluate_module, "load_example", lambda example, cache: loads.append(example.id) or load_example(example, cache))
    decoding = DecodingOptions(num_beams=2)
    # One clip per group: grouping must change nothing.
    result = evaluate(model, work / "data" / "rois" / "test.csv", EvalOptions(rates=((16, 5),), decoding=decoding, group_frames=1))
    assert [cell.cell.label for cell in result.cells] == ["ASR 16", "VSR 5", "AV 16,5"]
    assert sorted(loads) == ["rois/spk1/c0", "rois/spk1/c1", "rois/spk1/c2"]

    examples = read_manifest(work / "data" / "rois" / "test.csv").examples
    for cell in result.cells:
        transcripts = []
        for example in examples:
            audio, crops = load_example(example)
            clip = Clip(audio=audio if cell.cell.task != "vsr" else None, video=video_input(crops) if cell.cell.task != "asr" else None)
            [text] = model.generate_text([clip], cell.cell.task, (16, 5), decoding)
            transcripts.append(text)
        assert [text for _, text in cell.hypotheses] == transcripts
        expected = jiwer.wer([e.text.lower() for e in examples], [t.lower() for t in transcripts])
        assert cell.wer == pytest.approx(expected) and cell.words.reference_length == 13


def test_a_clip_cache_gives_the_same_table_and_holds_each_clip_once(work, tmp_path):
    cache = tmp_path / "cache"
    plain, filling, cached = (
        _eval(work, "--rates", "4,2", "--json", *extra) for extra in ([], ["--cache", str(cache)], ["--cache", str(cache)])
    )
    assert plain.exit_code == filling.exit_code == cached.exit_code == 0
    cells = [[(c["label"], c["wer"]) for c in json.loads(r.stdout)["cells"]] for r in (plain, filling, cached)]
    assert cells[0] == cells[1] == cells[2] and len(cells[0]) == 3
    assert len(list(cache.glob("*.npz"))) == len(CLIPS)


def test_unreadable_missing_and_repeated_clips_are_skipped_once_and_counted(work):
    def row(name, audio=True, frames=30):
        return (
            json.dumps(
                {
                    "dataset": "rois",
                    "video": f"spk1/{name}.mp4",
                    "audio": f"spk1/{name}.wav" if audio else None,
                    "frames": frames,
                    "text": CLIPS.get(name, (0, "x"))[1],
                }
            )
            + "\n"
        )

    manifest = work / "data" / "rois" / "mixed.jsonl"
    manifest.write_text(row("c0") + row("c1", audio=False) + row("short", frames=50) + row("gone") + row("c2") + row("c0") + "{broken\n")
    result = CliRunner().invoke(
        app, ["eval", str(manifest), "--model", str(work / "model"), "--tasks", "asr", "--tasks", "vsr", "--rates", "4,2", "--json", *FAST]
    )
    assert result.exit_code == 3, result.stderr
    results = json.loads(result.stdout)
    assert [(c["label"], c["utterances"], c["without_audio"]) for c in results["cells"]] == [("ASR 4", 2, 1), ("VSR 2", 3, 0)]
    assert results["clips"]["evaluated"] == 3
    reasons = {entry["where"]: entry["reason"] for entry in results["clips"]["skipped"]}
    assert set(reasons) == {f"{manifest}:7", "rois/spk1/gone", "rois/spk1/c0", "rois/spk1/short"}
    assert "audio lasts 1.00 s but the video 2.00 s" in reasons["rois/spk1/short"] and "listed again" in reasons["rois/spk1/c0"]
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 4 and sum("short" in line for line in warnings) == 1


def test_snr_mixes_the_same_seeded_noise_into_every_audio_cell(work):
    model = load_model(work / "model")
    examples = read_manifest(work / "data" / "rois" / "test.csv").examples
    clean = {len(audio): audio for audio in (load_example(e)[0] for e in examples)}

    def inputs(seed: int, group_frames: int) -> dict[str, dict[int, np.ndarray]]:
        recording = replace(model, module=_Recording(model.module))
        options = EvalOptions(
            tasks=("asr", "avsr"),
            rates=((4, 2),),
            snr_db=-5.0,
            noise_files=(work / "babble.wav",),
            seed=seed,
            decoding=DecodingOptions(num_beams=1),
            group_frames=group_frames,
        )
        evaluate(recording, work / "data" / "rois" / "test.csv", options)
        return {task: {len(c.audio): c.audio.numpy() for c in clips} for task, clips in recording.module.clips.items()}

    noisy = inputs(seed=0, group_frames=10_000)
    assert set(noisy) == {"asr", "avsr"} and set(noisy["asr"]) == set(clean)
    for length, audio in clean.items():
        added = noisy["asr"][length] - audio
        assert 10 * np.log10(np.sum(audio.astype(np.float64) ** 2) / np.sum(added.astype(np.float64) ** 2)) == pytest.approx(-5.0, abs=0.01)
        np.testing.assert_array_equal(noisy["avsr"][length], noisy["asr"][length])  # the same noise in every cell
    again = inputs(seed=0, group_frames=1)
    other = inputs(seed=1, group_frames=10_000)
    for length in clean:
        np.testing.assert_array_equal(again["asr"][length], noisy["asr"][length])
        assert not np.array_equal(other["asr"][length], noisy["asr"][length])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--tasks", "asr,lips"], "choose from asr, vsr, avsr"),
        (["--rates", "4,3"], "choose one of 4,2 4,5 16,2 16,5"),
        (["--rates", "four"], "A,V"),
        (["--snr", "-5"], "omniavsr: error: --snr -5 needs noise to mix in: add --noise FILE (e.g. a babble noise recording)\n"),
        (["--noise", "babble.wav"], "omniavsr: error: --noise is mixed in only at a fixed SNR: add --snr DB (e.g. --snr 0)\n"),
        (["--snr", "0", "--noise", "nowhere.wav"], "nowhere.wav: no such noise file"),
        (["--snr", "nan", "--noise", "babble.wav"], "omniavsr: error: --snr nan: give a finite SNR from -200 to 200 dB\n"),
        (["--snr", "-1e12", "--noise", "babble.wav"], "--snr -1e+12: give a finite SNR"),
        (["--dtype", "fp8"], "--dtype fp8"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(work, arguments, message):
    result = _eval(work, *arguments, "--quiet")
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_a_missing_model_is_one_line_and_exit_5_and_eval_is_listed(work, tmp_path):
    result = run_cli("eval", str(work / "data" / "rois" / "test.csv"), env={"OMNIAVSR_WEIGHTS": str(tmp_path / "empty")})
    assert result.returncode == 5 and result.stderr.decode().count("\n") == 1
    assert "omniavsr weights download omni-avsr-st" in result.stderr.decode() and result.stdout == b""
    assert "Table I of the paper" in CliRunner().invoke(app, ["--help"]).stdout
