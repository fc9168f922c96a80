"""transcribe --ray (cluster.py): a local Ray cluster gives the single-process outputs byte for byte, and a worker
killed mid-run costs nothing a rerun does not finish, each input written exactly once."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import psutil
import pytest
from faces import face_frames, speech_like, write_media
from helpers import run_cli

pytest.importorskip("ray")  # the ray extra


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    frames = face_frames(40, 128)
    for n in range(12):
        audio = speech_like([(0.2, 0.7 + 0.05 * n), (0.9, 1.4)], 1.6)
        if n % 3 == 2:
            write_media(folder / f"clip{n:02d}.wav", None, audio)
        else:
            write_media(folder / f"clip{n:02d}.mp4", np.roll(frames, n, axis=0), audio)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)  # fails as it does in one process
    return folder


def _outputs(folder) -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.json"))}


def _kill_a_worker_once_outputs_appear(out, killed: list) -> None:
    """Wait for the first transcript, then SIGKILL a Ray worker process that prepares inputs or runs the model."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(out.glob("*.json")):
        time.sleep(0.05)
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if command.startswith("ray::") and "MapBatches" in command:
            process.kill()
            killed.append(command)
            return


@pytest.mark.slow
def test_ray_outputs_equal_one_process_and_a_killed_worker_loses_nothing(local_ray, inputs, tiny_model, tmp_path):
    common = ["transcribe", str(inputs), "--model", str(tiny_model), "-f", "json", "--beams", "1", "--no-guards", "--quiet"]
    alone = run_cli(*common, "-o", str(tmp_path / "alone"), "--workers", "1")  # one process, nothing but this one
    assert alone.returncode == 3, alone.stderr  # the broken input failed, the others were done
    assert len(_outputs(tmp_path / "alone")) == 12

    killed: list[str] = []
    killer = threading.Thread(target=_kill_a_worker_once_outputs_appear, args=(tmp_path / "killed", killed))
    killer.start()
    first = run_cli(*common, "-o", str(tmp_path / "killed"), "--ray", "--skip-existing")
    killer.join()
    assert killed, "no Ray worker was running to kill"
    assert first.returncode == 3, first.stderr  # the broken input; what the killed worker held was retried or failed
    # Ray's retries usually save every input; the rerun then only skips and fails the broken input again, and
    # either way the outputs are the single-process ones byte for byte.
    rerun = run_cli(*common, "-o", str(tmp_path / "killed"), "--ray", "--skip-existing")
    assert rerun.returncode == 3 and rerun.stderr.decode().count("broken (E_") == 1, rerun.stderr
    assert _outputs(tmp_path / "killed") == _outputs(tmp_path / "alone")
    records = [json.loads(line) for line in (tmp_path / "killed" / "run.jsonl").read_text().splitlines()]
    written = [r["id"] for r in records if r["status"] == "ok"]
    assert sorted(written) == sorted(f"clip{n:02d}" for n in range(12)), "each input written exactly once"
    alone_log = {r["id"]: r for r in map(json.loads, (tmp_path / "alone" / "run.jsonl").read_text().splitlines())}
    failed = [r for r in records if r["status"] == "failed"]
    assert {r["id"]: r["error_code"] for r in failed if r["id"] == "broken"} == {"broken": alone_log["broken"]["error_code"]}
    assert all(r["error_code"] == "E_WORKER_LOST" for r in failed if r["id"] != "broken")
