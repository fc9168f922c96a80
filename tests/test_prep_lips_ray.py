"""prep-lips --ray (lips/prep.py on cluster.py): a local Ray cluster gives the outputs of one process, and a clip
whose task never returns is failed with E_WORKER_LOST while the others are written."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from faces import face_frames, speech_like, write_media
from helpers import run_cli
from test_prep_lips import outputs

from omniavsr_cli.cluster import RayOptions
from omniavsr_cli.inputs import InputFile
from omniavsr_cli.lips.prep import prepare

pytest.importorskip("ray")  # the ray extra


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Four 1.2-s clips of a moving face at 128x128, two in a subfolder, one without sound."""
    folder = tmp_path_factory.mktemp("clips")
    (folder / "talks").mkdir()
    frames = face_frames(30, 128)
    for n, name in enumerate(["a.mp4", "b.mp4", "talks/c.mp4", "talks/silent.mp4"]):
        audio = None if "silent" in name else speech_like([(0.1, 0.6 + 0.1 * n)], 1.2)
        write_media(folder / name, np.roll(frames, 3 * n, axis=0), audio)
    return folder


def test_ray_outputs_equal_one_process(local_ray, clips, tmp_path):
    alone = run_cli("prep-lips", str(clips), "-o", str(tmp_path / "alone"))
    assert alone.returncode == 0, alone.stderr
    on_ray = run_cli("prep-lips", str(clips), "-o", str(tmp_path / "ray"), "--ray", "--workers", "3")
    assert on_ray.returncode == 0, on_ray.stderr
    files, lines = outputs(tmp_path / "ray")
    assert (files, lines) == outputs(tmp_path / "alone")
    assert len(lines) == 4 and {"a.mp4", "b.mp4", "talks/c.mp4", "talks/silent.mp4", "talks/c.wav"} <= set(files)
    assert b"4 of 4 clips prepared" in on_ray.stderr

    again = run_cli("prep-lips", str(clips), "-o", str(tmp_path / "ray"), "--ray")  # finished clips are skipped before Ray
    assert again.returncode == 0 and b"4 already done" in again.stderr, again.stderr


def test_a_clip_whose_task_fails_is_lost_and_the_others_are_written(local_ray, clips, tmp_path):
    items = [InputFile(clips / "a.mp4", "a"), InputFile(clips / "missing.mp4", "missing")]

    def describe(error):  # made in the task for the missing clip only: its task fails, as a dead worker's would
        if error.code == "E_NOT_FOUND":
            raise RuntimeError("the task dies")
        return str(error)

    records = prepare(items, tmp_path, ray=RayOptions(), describe=describe)
    assert [(r.id, r.status) for r in records] == [("a", "ok"), ("missing", "failed")]
    assert records[1].error["code"] == "E_WORKER_LOST" and "rerun" in records[1].error["message"]
    logged = [json.loads(line) for line in (tmp_path / "prep.jsonl").read_text().splitlines()]
    assert [(r["id"], r["status"]) for r in logged] == [("a", "ok"), ("missing", "failed")]
    assert (tmp_path / "a.mp4").is_file() and not list(tmp_path.glob("*.part"))


def test_ray_asked_for_without_ray_installed_exits_5(clips, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as without the extra
    result = run_cli("prep-lips", str(clips / "a.mp4"), "-o", str(tmp_path), "--ray")
    assert result.returncode == 5 and b"pip install 'omniavsr[ray]'" in result.stderr, result.stderr
