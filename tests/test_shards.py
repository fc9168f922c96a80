"""Job-array shards (docs/cluster.md): `--shard I/N` on transcribe, prep-lips and eval splits the inputs into N
disjoint parts by a hash of their ids, each part keeps its own log, and `omniavsr runs merge` puts the logs back
together as one run's."""

import json
import random
import re
from pathlib import Path

import pytest
from faces import speech_like, write_media
from helpers import run_cli
from synthetic import write_dataset

from omniavsr_cli.errors import UsageError
from omniavsr_cli.inputs import InputFile, Shard, collect_inputs, shard
from omniavsr_cli.runs import merge_logs, shard_log

FAST = ["--mode", "asr", "--beams", "1", "--no-word-timestamps", "-f", "json", "--progress", "none"]


def _ids(count: int) -> list[InputFile]:
    return [InputFile(Path(f"talks/{n:03d}.wav"), f"talks/{n:03d}") for n in range(count)]


@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_shards_hold_every_input_once_whatever_the_order(count):
    items = _ids(200)
    parts = [shard(items, index, count) for index in range(1, count + 1)]
    held = [item for part in parts for item in part]
    assert sorted(held, key=lambda item: item.clip_id) == items  # every input, none twice
    assert all(parts)  # 200 inputs leave no part empty
    for order in (items[::-1], random.Random(0).sample(items, len(items))):
        for index, part in enumerate(parts, start=1):
            again = shard(order, index, count)
            assert set(again) == set(part)  # the same part whatever the list's order ...
            assert again == [item for item in order if item in set(part)]  # ... in the order given


def test_a_shard_is_chosen_by_the_input_id_alone(tmp_path):
    # The same files named as a directory or as a list in another order land in the same parts.
    for name in "abcdef":
        (tmp_path / f"{name}.wav").write_bytes(b"")
    (tmp_path / "list.txt").write_text("".join(f"{tmp_path / name}.wav\n" for name in "fedcba"), encoding="utf-8")
    by_folder, by_list = collect_inputs([str(tmp_path)]), collect_inputs([f"@{tmp_path / 'list.txt'}"])
    for index in (1, 2, 3):
        assert {item.clip_id for item in shard(by_folder, index, 3)} == {item.clip_id for item in shard(by_list, index, 3)}


@pytest.mark.parametrize("given", ["0/3", "4/3", "x/y", "1/0", "3", "1/3/5", "-1/3"])
def test_bad_shards_are_usage_errors(given):
    with pytest.raises(UsageError, match=re.escape(f"shard {given}: give I/N")):
        Shard.parse(given)
    assert Shard.parse(" 2/3 ") == Shard(2, 3) and Shard(2, 3).name == "shard-2-of-3"
    assert shard_log("run.jsonl", Shard(2, 3)) == "run.shard-2-of-3.jsonl" and shard_log("prep.jsonl", None) == "prep.jsonl"


@pytest.mark.parametrize(
    "command",
    [
        ["transcribe", "missing.wav"],
        ["prep-lips", "missing.mp4", "-o", "out"],
        ["eval", "missing.csv"],
    ],
)
@pytest.mark.parametrize("given", ["0/3", "4/3", "x/y", "1/0"])
def test_bad_shard_flags_exit_2_with_one_line(command, given, tmp_path):
    result = run_cli(*command, "--shard", given, env={"OMNIAVSR_WEIGHTS": str(tmp_path)})
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"omniavsr: error: --shard {given}: give I/N")


# ------------------------------------------------------------------------------------------ transcribe


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """Five short sounds and a broken file: enough for three shards, one failure among them."""
    folder = tmp_path_factory.mktemp("shards") / "media"
    (folder / "more").mkdir(parents=True)
    for number, name in enumerate(["a", "b", "c", "more/d", "more/e"]):
        write_media(folder / f"{name}.wav", None, speech_like([(0.2, 0.9 + 0.1 * number)], 1.2))
    (folder / "broken.wav").write_bytes(b"RIFF" + b"junk" * 50)
    return folder


def _records(path: Path) -> dict[str, dict]:
    records = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        records[record["id"]] = {key: record[key] for key in ("input", "status", "error_code", "media_seconds", "chunks", "flags")}
    return records


def _counts(stderr: bytes) -> str:
    """'5 of 6 inputs done (5.9 s of media' from a transcribe or runs merge summary."""
    return re.search(r"\d+ of \d+ inputs done \([\d.]+ s of media", stderr.decode())[0]


def test_sharded_transcribe_merges_into_one_runs_log_and_summary(media, tiny_model, tmp_path):
    whole = run_cli("transcribe", str(media), "--model", str(tiny_model), "-o", str(tmp_path / "whole"), *FAST)
    assert whole.returncode == 3, whole.stderr.decode()  # the broken file fails, the others are done

    out = tmp_path / "sharded"
    for index in (1, 2, 3):
        result = run_cli("transcribe", str(media), "--model", str(tiny_model), "-o", str(out), "--shard", f"{index}/3", *FAST)
        assert result.returncode in (0, 3), result.stderr.decode()
        assert f"log in {out / f'run.shard-{index}-of-3.jsonl'}" in result.stderr.decode()
    assert not (out / "run.jsonl").exists()
    parts = [_records(out / f"run.shard-{index}-of-3.jsonl") for index in (1, 2, 3)]
    assert sum(map(len, parts)) == 6 and len({clip_id for part in parts for clip_id in part}) == 6  # disjoint, all
    for clip_id in ("a", "b", "c", "more/d", "more/e"):
        assert (out / f"{clip_id}.json").read_text(encoding="utf-8") == (tmp_path / "whole" / f"{clip_id}.json").read_text(encoding="utf-8")

    merged = run_cli("runs", "merge", str(out), "--inputs", str(media))
    assert merged.returncode == whole.returncode, merged.stderr.decode()
    assert _counts(merged.stderr) == _counts(whole.stderr)
    assert "1 failed: broken (E_CORRUPT)" in merged.stderr.decode()
    assert _records(out / "run.jsonl") == _records(tmp_path / "whole" / "run.jsonl")
    lines = (out / "run.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == sorted(_records(out / "run.jsonl"))  # one line per input, by id

    # A shard rerun with --skip-existing redoes nothing, and the merge still counts the inputs it did.
    again = run_cli("transcribe", str(media), "--model", str(tiny_model), "-o", str(out), "--shard", "1/3", "--skip-existing", *FAST)
    shard_one = _records(out / "run.shard-1-of-3.jsonl")
    assert again.returncode == 0 and f"{len(shard_one)} already done" in again.stderr.decode()  # shard 1 holds no broken file
    assert {r["status"] for r in shard_one.values()} == {"skipped"}  # the last line of each
    remerged = run_cli("runs", "merge", str(out), "--inputs", str(media))
    assert _counts(remerged.stderr) == _counts(whole.stderr) and _records(out / "run.jsonl") == _records(tmp_path / "whole" / "run.jsonl")


def test_an_empty_shard_has_nothing_to_do(media, tmp_path):
    only = media / "a.wav"
    empty = next(index for index in (1, 2) if not shard([InputFile(only, "a")], index, 2))
    result = run_cli("transcribe", str(only), "--model", str(tmp_path / "no-model"), "-o", str(tmp_path), "--shard", f"{empty}/2")
    assert result.returncode == 0, result.stderr.decode()  # before the model is even looked for
    assert result.stderr.decode() == f"transcribe: shard {empty}/2 holds none of the 1 inputs; nothing to do\n"


# ----------------------------------------------------------------------------------------------- merge


def _write_log(path: Path, *records: dict) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


def _run_record(clip_id: str, status: str, **fields) -> dict:
    return {"input": f"{clip_id}.wav", "id": clip_id, "status": status, "error_code": None, "media_seconds": 1.5, **fields}


def test_merge_keeps_the_last_line_of_each_input_and_lists_the_missing(tmp_path):
    for name in ("a", "b", "c", "d"):
        (tmp_path / f"{name}.wav").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    _write_log(out / "run.jsonl", _run_record("a", "failed", error_code="E_CORRUPT"))  # an earlier run
    _write_log(out / "run.shard-1-of-2.jsonl", _run_record("a", "ok"), _run_record("b", "ok"), _run_record("b", "skipped", media_seconds=0))
    (out / "run.shard-2-of-2.jsonl").write_text(json.dumps(_run_record("c", "failed", error_code="E_NO_AUDIO")) + '\n{"id": "d", "sta')
    (out / "run.shard-2-of-2.jsonl.part").write_text("not a log")

    merged = run_cli("runs", "merge", str(out), "--inputs", str(tmp_path / "a.wav"), "--inputs", f"{tmp_path}/[bcd].wav")
    stderr = merged.stderr.decode()
    assert merged.returncode == 3, stderr
    assert "runs merge: 2 of 4 inputs done (3.0 s of media); 3 logs merged into" in stderr
    assert "runs merge: 1 failed: c (E_NO_AUDIO)" in stderr and "runs merge: 1 in no log: d; rerun their shards" in stderr
    assert "1 lines of the logs" in stderr  # the half-written last line
    records = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    assert [(r["id"], r["status"]) for r in records] == [("a", "ok"), ("b", "ok"), ("c", "failed")]  # b's skip kept its ok

    (out / "run.shard-2-of-2.jsonl").unlink()
    _write_log(out / "run.shard-2-of-2.jsonl", _run_record("c", "ok"), _run_record("d", "ok"))
    again = run_cli("runs", "merge", str(out))
    assert again.returncode == 0 and "warning" not in again.stderr.decode()  # the merged log is read first: merging again is safe
    assert len((out / "run.jsonl").read_text().splitlines()) == 4

    _write_log(out / "run.shard-3-of-3.jsonl", _run_record("e", "ok"))  # a run split three ways, two of its shards missing
    warned = run_cli("runs", "merge", str(out)).stderr.decode()
    assert "no log of shard 1/3, 2/3 in" in warned and "split 2 and 3 ways" in warned


def test_merge_reads_prep_lips_logs_and_needs_one(tmp_path):
    out = tmp_path / "rois"
    out.mkdir()
    nothing = run_cli("runs", "merge", str(out))
    assert nothing.returncode == 2 and len(nothing.stderr.splitlines()) == 1 and "no run log here" in nothing.stderr.decode()
    clip = {"source": "x.mp4", "status": "ok", "frames": 50, "error": None}
    _write_log(out / "prep.shard-1-of-2.jsonl", {**clip, "id": "x"})
    _write_log(
        out / "prep.shard-2-of-2.jsonl",
        {**clip, "id": "y", "status": "failed", "frames": 0, "error": {"code": "E_NO_FACE", "message": "-"}},
    )
    merged = run_cli("runs", "merge", str(out))
    assert merged.returncode == 3
    assert "runs merge: 1 of 2 clips prepared (50 frames)" in merged.stderr.decode() and "y (E_NO_FACE)" in merged.stderr.decode()
    [log] = merge_logs(out)
    assert log.log == out / "prep.jsonl" and [r["id"] for r in log.records] == ["x", "y"]


# ------------------------------------------------------------------------------------------ prep-lips, eval


def test_prep_lips_shards_keep_their_own_logs_and_refuse_a_shared_manifest(tmp_path):
    result = run_cli("prep-lips", str(tmp_path), "-o", str(tmp_path / "out"), "--shard", "1/2", "--manifest")
    assert result.returncode == 2 and "--manifest with --shard" in result.stderr.decode()
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.mp4").write_bytes(b"not a video")
    for index in (1, 2, 3):  # one clip each
        result = run_cli("prep-lips", str(tmp_path / "*.mp4"), "-o", str(tmp_path / "out"), "--shard", f"{index}/3")
        assert result.returncode == 4 and f"records in {tmp_path / 'out' / f'prep.shard-{index}-of-3.jsonl'}" in result.stderr.decode()
    assert not (tmp_path / "out" / "prep.jsonl").exists()
    [log] = merge_logs(tmp_path / "out")
    assert [r["id"] for r in log.records] == ["a", "b", "c"] and len(log.sources) == 3


def test_eval_shards_write_their_results_apart_and_together_cover_the_set(tiny_model, tmp_path):
    manifest = write_dataset(tmp_path, count=4)
    references = []
    for index in (1, 2):
        out = tmp_path / "eval"
        result = run_cli(
            "eval", str(manifest), "--model", str(tiny_model), "--tasks", "asr", "--beams", "1", "-o", str(out), "--shard", f"{index}/2"
        )
        assert result.returncode == 0, result.stderr.decode()
        references += (out / f"shard-{index}-of-2" / "reference.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["utt_id"] for line in references) == [f"rois/spk/c{n}" for n in range(4)]
