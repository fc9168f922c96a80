"""Training data: manifests (CSV with quoting, JSONL), bad lines and clips skipped with reasons, the official
frame-budget batching, and an epoch order that only depends on the seed and the epoch."""

import json
import os

import numpy as np
import pytest
from faces import speech_like, write_media

from omniavsr_cli.errors import InputError
from omniavsr_cli.training.data import BadExample, check_files, epoch_order, frame_batches, load_example, read_manifest


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    clips = root / "rois" / "spk1"
    clips.mkdir(parents=True)
    frames = np.random.default_rng(0).integers(0, 255, (50, 96, 96, 3), dtype=np.uint8)
    write_media(clips / "a.mp4", frames, None)
    write_media(clips / "a.wav", None, speech_like([(0.2, 1.8)], 2.0))
    write_media(clips / "short.mp4", frames, None)
    write_media(clips / "short.wav", None, speech_like([(0.2, 0.8)], 1.0))  # half as long as its video
    return root


def test_csv_manifests_are_parsed_with_quoting_and_paths_under_root_dataset(dataset):
    manifest = dataset / "rois" / "manifest.csv"
    manifest.write_text(
        'rois,spk1/a.mp4,50,,"hello, world"\nrois,spk1/b.mp4,x,,bad frames\nonly,three,columns\nrois,spk1/c.mp4,20,,  \n', encoding="utf-8"
    )
    result = read_manifest(manifest)
    [example] = result.examples
    assert example.text == "hello, world" and example.frames == 50 and example.id == "rois/spk1/a"
    assert example.video == dataset / "rois" / "spk1" / "a.mp4" and example.audio == dataset / "rois" / "spk1" / "a.wav"
    assert [where.rsplit(":", 1)[1] for where, _ in result.skipped] == ["2", "3", "4"]
    assert "columns" in result.skipped[1][1] and "the transcript is empty" in result.skipped[2][1]


def test_jsonl_manifests_and_missing_files_are_skipped_with_a_reason(dataset):
    manifest = dataset / "rois" / "manifest.jsonl"
    rows = [
        {"dataset": "rois", "video": "spk1/a.mp4", "audio": "spk1/a.wav", "frames": 50, "text": "hello  world"},
        {"dataset": "rois", "video": "spk1/gone.mp4", "audio": None, "frames": 10, "text": "x"},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n", encoding="utf-8")
    result = check_files(read_manifest(manifest))
    assert [e.text for e in result.examples] == ["hello world"]
    assert [why.split(" ")[0] for _, why in result.skipped] == ["unusable", "missing"]
    with pytest.raises(InputError, match="no usable examples"):
        (dataset / "empty.jsonl").write_text("{broken\n")
        read_manifest(dataset / "empty.jsonl")
    with pytest.raises(InputError, match=r"gone.csv: cannot read this manifest \(No such file or directory\); give the manifest"):
        read_manifest(dataset / "gone.csv")


def test_a_clip_loads_as_audio_and_crops_and_a_length_mismatch_is_reported(dataset):
    manifest = dataset / "rois" / "manifest.csv"
    manifest.write_text("rois,spk1/a.mp4,50,,hello\nrois,spk1/short.mp4,50,,short\n")
    good, short = read_manifest(manifest).examples
    audio, video = load_example(good)
    assert video.shape == (50, 96, 96, 3) and video.dtype == np.uint8 and len(audio) == 32000
    with pytest.raises(BadExample, match="audio lasts 1.00 s but the video 2.00 s") as bad:
        load_example(short)
    assert isinstance(bad.value, InputError) and bad.value.code == "E_BAD_EXAMPLE"


def test_batches_follow_the_official_bucketing_and_respect_the_frame_budget():
    lengths = [100, 400, 250, 90, 410, 30, 260, 120]
    batches = frame_batches(lengths, max_frames=500, buckets=4)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in batch) <= 500 for batch in batches)
    # Buckets (edges 30, 156.7, 283.3, 410): shortest bucket first, longest first inside a bucket.
    assert [i for batch in batches for i in batch] == [5, 7, 0, 3, 6, 2, 4, 1]
    with pytest.raises(InputError, match="longer than the batch budget .*; raise max_frames$"):
        frame_batches([600], max_frames=500)


def test_the_epoch_order_is_shuffled_per_epoch_and_reproducible():
    batches = [[i] for i in range(20)]
    assert epoch_order(batches, 3, seed=7) == epoch_order(batches, 3, seed=7)
    assert epoch_order(batches, 3, seed=7) != epoch_order(batches, 4, seed=7)
    assert sorted(epoch_order(batches, 3, seed=7)) == batches


def test_a_cached_clip_is_read_back_without_decoding_and_decoded_again_once_the_clip_changes(dataset, tmp_path, monkeypatch):
    from omniavsr_cli.training import data

    manifest = dataset / "rois" / "manifest.csv"
    manifest.write_text("rois,spk1/a.mp4,50,,hello\n")
    [example] = read_manifest(manifest).examples
    cache = data.clip_cache(tmp_path / "cache")
    audio, video = load_example(example, cache)
    [stored] = cache.glob("*.npz")

    def no_decoding(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(data, "load_video", no_decoding)
    monkeypatch.setattr(data, "load_audio", no_decoding)
    cached_audio, cached_video = load_example(example, cache)
    assert np.array_equal(cached_video, video) and np.array_equal(cached_audio, audio) and cached_audio.dtype == np.float32

    stored.write_bytes(stored.read_bytes()[:100])  # a cut-short file: decoded again, not a crash
    with pytest.raises(AssertionError, match="decoded"):
        load_example(example, cache)
    monkeypatch.undo()
    load_example(example, cache)
    assert np.array_equal(np.load(stored)["video"], video)

    frames = np.zeros((50, 96, 96, 3), dtype=np.uint8)
    write_media(example.video, frames, None)  # the clip prepared again: another key, so not the old crops
    assert not np.array_equal(load_example(example, cache)[1], video) and len(list(cache.glob("*.npz"))) == 2

    example.audio.unlink()  # gone in the middle of a run: a bad example, as without the cache
    with pytest.raises(BadExample, match="a.wav"):
        load_example(example, cache)


def test_a_cache_directory_that_cannot_be_made_is_a_one_line_input_error(tmp_path):
    from omniavsr_cli.training.data import clip_cache

    (tmp_path / "file").write_text("x")
    # the library names its parameter; the command line shows it as --cache (test_training.py)
    with pytest.raises(InputError, match="^cache .*file.*choose another"):
        clip_cache(tmp_path / "file" / "cache")
    assert clip_cache(None) is None


def test_a_csv_quote_never_closed_skips_its_line_only_and_quoted_line_breaks_are_one_field(dataset):
    manifest = dataset / "rois" / "manifest.csv"
    manifest.write_text(
        'rois,spk1/a.mp4,50,,"set blue\nby l two"\nrois,spk1/b.mp4,50,,"never closed\nrois,spk1/c.mp4,50,,set green\n', encoding="utf-8"
    )
    result = read_manifest(manifest)
    assert [(e.id, e.text) for e in result.examples] == [("rois/spk1/a", "set blue by l two"), ("rois/spk1/c", "set green")]
    assert result.skipped == [(f"{manifest}:3", "unusable line (a quote opened on this line is never closed)")]
    manifest.write_text('rois,spk1/a.mp4,50,,"bad"quote\nrois,spk1/c.mp4,50,,fine\n', encoding="utf-8")
    result = read_manifest(manifest)
    assert [e.id for e in result.examples] == ["rois/spk1/c"] and result.skipped[0][0] == f"{manifest}:1"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_byte_order_mark_is_not_part_of_the_first_path(dataset, suffix):
    manifest = dataset / "rois" / f"manifest{suffix}"
    row = {"dataset": "rois", "video": "spk1/a.mp4", "audio": "spk1/a.wav", "frames": 50, "text": "hello"}
    manifest.write_text("rois,spk1/a.mp4,50,,hello\n" if suffix == ".csv" else json.dumps(row) + "\n", encoding="utf-8-sig")
    result = check_files(read_manifest(manifest))
    assert [e.id for e in result.examples] == ["rois/spk1/a"] and not result.skipped


def test_a_jsonl_line_nested_too_deeply_is_skipped_like_any_unparsable_line(dataset):
    manifest = dataset / "rois" / "manifest.jsonl"
    row = {"dataset": "rois", "video": "spk1/a.mp4", "audio": "spk1/a.wav", "frames": 50, "text": "hello"}
    manifest.write_text("[" * 100000 + "]" * 100000 + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    result = read_manifest(manifest)
    assert [e.id for e in result.examples] == ["rois/spk1/a"]
    assert result.skipped == [(f"{manifest}:1", "unusable line (nested too deeply)")]


def test_the_manifests_prep_lips_writes_read_back_with_a_name_that_is_not_utf8_and_a_clip_without_audio(tmp_path):
    from types import SimpleNamespace

    from omniavsr_cli.training.manifests import write_manifests

    sources, out = tmp_path / "videos", tmp_path / "rois"
    sources.mkdir(), out.mkdir()
    names = {"caf": os.fsdecode(b"caf\xe9"), "mute": "mute"}
    items, records = [], []
    for name in names.values():
        (sources / f"{name}.txt").write_text(f"Text:  {name.encode('ascii', 'replace').decode()} said\n", encoding="utf-8")
        (out / f"{name}.mp4").write_bytes(b"")
        items.append(SimpleNamespace(clip_id=name, path=sources / f"{name}.mp4"))
        records.append(SimpleNamespace(id=name, status="ok", frames=25, audio=name != "mute"))
    (out / f"{names['caf']}.wav").write_bytes(b"")
    assert write_manifests(out, items, records) == (2, 1)

    from_csv = check_files(read_manifest(out / "manifest.csv"))
    from_jsonl = check_files(read_manifest(out / "manifest.jsonl"))
    assert not from_csv.skipped and not from_jsonl.skipped
    caf = out / f"{names['caf']}.mp4"
    # The csv has no column to say "no audio", so the clip without audio is only in the jsonl.
    assert [(e.video, e.audio) for e in from_csv.examples] == [(caf, caf.with_suffix(".wav"))]
    assert [(e.video, e.audio) for e in from_jsonl.examples] == [(caf, caf.with_suffix(".wav")), (out / "mute.mp4", None)]

    with (out / "manifest.csv").open("ab") as manifest:
        manifest.write(b"rois,mute.mp4,25,,caf\xe9\n")  # bytes kept for a path are never a reference transcript
    assert read_manifest(out / "manifest.csv").skipped == [(f"{out / 'manifest.csv'}:2", "unusable line (text is not UTF-8)")]
