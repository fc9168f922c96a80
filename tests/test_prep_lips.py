"""``omniavsr prep-lips`` end to end on real faces with the real landmark models and ffmpeg."""

import csv
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import wave

import cv2
import numpy as np
import pytest
from faces import SHARED_GIF, dlib_lip_centres, face_frames, ffmpeg, write_video
from helpers import run_cli, run_cli_process, sigint_as_in_a_terminal

from omniavsr_cli.inputs import collect_inputs
from omniavsr_cli.lips import roi
from omniavsr_cli.lips.prep import PrepOptions, prepare_clip
from omniavsr_cli.media.decode import load_video
from omniavsr_cli.media.probe import probe

FRAMES = 50


@pytest.fixture(scope="session")
def face_clip(tmp_path_factory):
    """Two seconds of a real moving face at 224x224, 25 fps, with a stereo 44.1 kHz tone."""
    folder = tmp_path_factory.mktemp("face")
    return write_video(folder / "face.mp4", face_frames(FRAMES), audio_seconds=FRAMES / 25)


@pytest.fixture(scope="session")
def prepared(face_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    # a process of its own: mediapipe's native start-up chatter comes once per process (the chatter test below)
    result = run_cli_process("prep-lips", str(face_clip), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    return out, result


def records(out):
    return {r["id"]: r for r in map(json.loads, (out / "prep.jsonl").read_text().splitlines())}


def mouth_offsets(source_frames, landmarks_file) -> np.ndarray:
    """Where an independent detector's (dlib's) mouth centre lands in each crop, relative to the crop centre."""
    with np.load(landmarks_file) as data:
        points = data["points"]
    reference, offsets = roi.mean_face(), []
    for index, centre in enumerate(dlib_lip_centres(source_frames)):
        if centre is None:
            continue
        geometry = roi.frame_geometry(points, index, reference)
        warped = centre @ geometry.matrix[:, :2].T + geometry.matrix[:, 2]
        offsets.append(warped - (geometry.window.left + 48, geometry.window.top + 48))
    return np.array(offsets)


def test_a_real_face_gives_centred_96px_mouth_crops_and_aligned_audio(face_clip, prepared):
    out, result = prepared
    crops = load_video(out / "face.mp4")
    assert crops.shape == (FRAMES, 96, 96, 3)
    assert probe(out / "face.mp4").video.fps == 25
    record = records(out)["face"]
    assert record["status"] == "ok" and record["frames"] == FRAMES and record["face_coverage"] == 1.0
    assert record["detector"] == "mediapipe" and record["faces_seen"] == 1 and record["audio"] is True
    with wave.open(str(out / "face.wav")) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (16000, 1, 2)
        assert audio.getnframes() == pytest.approx(FRAMES * 640, abs=640)
    offsets = mouth_offsets(load_video(face_clip), out / "face.landmarks.npz")
    assert len(offsets) >= FRAMES - 2
    assert np.linalg.norm(offsets, axis=1).mean() < 3.0
    # The model's grey 88x88 centre is not a flat patch: there is a mouth in it.
    assert crops[:, 4:92, 4:92].std() > 10


def test_native_log_chatter_stays_off_the_terminal(prepared):
    _, result = prepared
    stderr = result.stderr.decode()
    assert "XNNPACK" not in stderr and "W0000" not in stderr
    assert stderr.strip().splitlines() == [line for line in stderr.strip().splitlines() if line.startswith("prep-lips:")]


@pytest.mark.skipif(not SHARED_GIF.exists(), reason="the shared talking-face gif is not in this checkout")
def test_the_real_talking_face_with_glasses(tmp_path):
    panel = load_video(SHARED_GIF)[:, :223, :180]  # the left panel holds the face
    clip = write_video(tmp_path / "glasses.mp4", panel, codec="ffv1")
    out = tmp_path / "out"
    assert run_cli("prep-lips", str(clip), "-o", str(out)).returncode == 0
    assert records(out)["glasses"]["face_coverage"] > 0.95
    offsets = mouth_offsets(load_video(clip), out / "glasses.landmarks.npz")
    assert len(offsets) > 50 and np.linalg.norm(offsets, axis=1).mean() < 3.0


def test_the_landmarks_file_holds_points_scores_mask_and_reproduces_the_crops(face_clip, prepared, tmp_path):
    out, _ = prepared
    with np.load(out / "face.landmarks.npz") as data:
        assert data["points"].shape == (FRAMES, 68, 2) and data["detected"].all() and data["scores"].shape == (FRAMES,)
        assert json.loads(str(data["record"]))["frames"] == FRAMES
    again = tmp_path / "again"
    result = run_cli("prep-lips", str(face_clip), "-o", str(again), "--detector", f"landmarks:{out / 'face.landmarks.npz'}")
    assert result.returncode == 0, result.stderr.decode()
    assert (again / "face.mp4").read_bytes() == (out / "face.mp4").read_bytes()
    assert records(again)["face"]["detector"].startswith("landmarks:")


def test_auto_avsr_pickled_landmarks_with_missing_frames(face_clip, prepared, tmp_path):
    out, _ = prepared
    with np.load(out / "face.landmarks.npz") as data:
        frames = [None if k in (3, 4, 20) else p for k, p in enumerate(data["points"])]
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "face.pkl").write_bytes(pickle.dumps(frames))
    result = run_cli("prep-lips", str(face_clip), "-o", str(tmp_path / "o"), "--detector", f"landmarks:{folder}")
    assert result.returncode == 0, result.stderr.decode()
    record = records(tmp_path / "o")["face"]
    assert record["interpolated_frames"] == 3 and record["longest_gap"] == 2


def test_a_pickle_that_would_run_code_is_refused(face_clip, tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    landmarks = tmp_path / "evil.pkl"
    landmarks.write_bytes(pickle.dumps([Exploit()]))
    result = run_cli("prep-lips", str(face_clip), "-o", str(tmp_path / "o"), "--detector", f"landmarks:{landmarks}")
    assert result.returncode == 4
    assert b"pwned" not in result.stdout
    assert records(tmp_path / "o")["face"]["error"]["code"] == "E_LANDMARKS"


def test_a_directory_with_bad_files_prepares_the_good_ones_and_says_which_failed(face_clip, prepared, tmp_path):
    media = tmp_path / "media"
    (media / "talks").mkdir(parents=True)
    shutil.copy(face_clip, media / "talks" / "good.mp4")
    (media / "broken.mp4").write_bytes(face_clip.read_bytes()[: face_clip.stat().st_size // 3])
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(media / "speech.wav"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=128x128:rate=25:duration=1", "-pix_fmt", "yuv420p", str(media / "pattern.mp4"))
    (media / "notes.json").write_text("{}")  # not media: ignored
    out = tmp_path / "out"
    result = run_cli("prep-lips", str(media), "-o", str(out), "--workers", "2")
    assert result.returncode == 3, result.stderr.decode()
    status = {clip_id: (r["status"], (r["error"] or {}).get("code")) for clip_id, r in records(out).items()}
    assert status == {
        "talks/good": ("ok", None),
        "broken": ("failed", "E_CORRUPT"),
        "speech": ("failed", "E_NO_VIDEO"),
        "pattern": ("failed", "E_NO_FACE"),
    }
    assert "no lips to read; give a video file" in records(out)["speech"]["error"]["message"]  # worded for prep-lips too
    stderr = result.stderr.decode()
    assert "3 failed" in stderr and "broken (E_CORRUPT)" in stderr
    assert "Traceback" not in stderr
    # Mirrored tree, and two workers give the same bytes as one.
    assert (out / "talks" / "good.mp4").read_bytes() == (prepared[0] / "face.mp4").read_bytes()
    assert not list(out.rglob("*.part"))


def test_all_failed_has_its_own_exit_code_and_a_missing_file_is_reported_not_fatal(tmp_path):
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x96:rate=25:duration=1", "-pix_fmt", "yuv420p", str(tmp_path / "pattern.mp4"))
    result = run_cli("prep-lips", str(tmp_path / "pattern.mp4"), str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "out"))
    assert result.returncode == 4
    codes = {clip_id: r["error"]["code"] for clip_id, r in records(tmp_path / "out").items()}
    assert codes == {"pattern": "E_NO_FACE", "nope": "E_NOT_FOUND"}
    assert "another --detector may find" in records(tmp_path / "out")["pattern"]["error"]["message"]  # says what to try


def test_quiet_leaves_only_the_failed_clips_on_stderr(face_clip, prepared, tmp_path):
    shutil.copy(face_clip, tmp_path / "good.mp4")
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x96:rate=25:duration=1", "-pix_fmt", "yuv420p", str(tmp_path / "pattern.mp4"))
    loud = run_cli("prep-lips", str(tmp_path / "good.mp4"), str(tmp_path / "pattern.mp4"), "-o", str(tmp_path / "loud"))
    quiet = run_cli("prep-lips", str(tmp_path / "good.mp4"), str(tmp_path / "pattern.mp4"), "-o", str(tmp_path / "quiet"), "-q")
    assert loud.returncode == quiet.returncode == 3
    assert "1 of 2 clips prepared" in loud.stderr.decode()
    lines = quiet.stderr.decode().splitlines()
    assert not any("clips prepared" in line for line in lines)
    assert any("pattern" in line and "no face found" in line for line in lines)  # the failed clip, as it happened
    assert any("1 failed: pattern (E_NO_FACE)" in line for line in lines)
    assert (tmp_path / "quiet" / "good.mp4").read_bytes() == (tmp_path / "loud" / "good.mp4").read_bytes()


def test_low_face_coverage_fails_with_a_reason_unless_allowed(tmp_path):
    frames = face_frames(20)
    frames = np.concatenate([frames, np.full((30, *frames.shape[1:]), 90, np.uint8)])
    clip = write_video(tmp_path / "brief.mp4", frames, codec="ffv1")
    result = run_cli("prep-lips", str(clip), "-o", str(tmp_path / "strict"))
    assert result.returncode == 4
    record = records(tmp_path / "strict")["brief"]
    assert record["error"]["code"] == "E_LOW_FACE_COVERAGE" and "40%" in record["error"]["message"]
    assert "(--min-face-coverage 0.5)" in record["error"]["message"]  # the command line names its flag
    assert not (tmp_path / "strict" / "brief.mp4").exists()
    [item] = collect_inputs([str(clip)])
    failed = prepare_clip(item, tmp_path / "library", PrepOptions())
    assert failed.error["message"] == record["error"]["message"].replace("--min-face-coverage", "min_face_coverage")
    assert run_cli("prep-lips", str(clip), "-o", str(tmp_path / "lax"), "--min-face-coverage", "0.3").returncode == 0
    record = records(tmp_path / "lax")["brief"]
    assert record["face_coverage"] == 0.4 and record["longest_gap"] == 30 and record["interpolated_frames"] == 30
    assert load_video(tmp_path / "lax" / "brief.mp4").shape[0] == 50


def outputs(out):
    """Every output of a run: file bytes (landmark arrays for .npz), prep.jsonl without timings."""
    files = {}
    for path in sorted(out.rglob("*")):
        if path.suffix == ".npz":
            with np.load(path) as data:
                files[path.relative_to(out).as_posix()] = [data[k].tobytes() for k in ("points", "scores", "detected")]
        elif path.name != "prep.jsonl" and path.is_file():
            files[path.relative_to(out).as_posix()] = path.read_bytes()
    lines = [{k: v for k, v in r.items() if k != "seconds"} for r in records(out).values()]
    return files, lines


def test_a_killed_run_resumes_and_ends_equal_to_an_uninterrupted_one(face_clip, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    for k in range(5):
        shutil.copy(face_clip, media / f"clip{k}.mp4")
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert run_cli("prep-lips", str(media), "-o", str(whole)).returncode == 0

    command = [shutil.which("omniavsr", path=os.path.dirname(sys.executable)), "prep-lips", str(media), "-o", str(resumed)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        log = resumed / "prep.jsonl"
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = sorted(p.name for p in resumed.glob("*.mp4"))
    assert 2 <= len(finished) < 5, "the run should have been killed half way"

    result = run_cli("prep-lips", str(media), "-o", str(resumed))
    assert result.returncode == 0
    assert f"{len(finished)} already done" in result.stderr.decode()
    assert outputs(resumed) == outputs(whole)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_cleanly_keeping_finished_clips(face_clip, tmp_path, workers):
    media = tmp_path / "media"
    media.mkdir()
    # Thirty clips, one at a time: on a loaded machine this test can be kept off the CPU for a second or more after
    # it sees the first record, and four short clips (later ten) were then all done before the Ctrl-C came. With
    # two worker processes the signal reaches the main process alone: the clips the workers hold still finish.
    for k in range(30):
        shutil.copy(face_clip, media / f"clip{k}.mp4")
    out = tmp_path / "out"
    command = [
        shutil.which("omniavsr", path=os.path.dirname(sys.executable)),
        "prep-lips",
        str(media),
        "-o",
        str(out),
        "--workers",
        workers,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=sigint_as_in_a_terminal)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ((out / "prep.jsonl").exists() and (out / "prep.jsonl").read_text()):
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    last = stderr.decode().strip().splitlines()[-1]
    assert last.startswith("omniavsr: error: interrupted: ") and "rerun the same command" in last
    assert not list(out.rglob("*.part"))
    done = records(out)
    assert 1 <= len(done) < 30 and all(r["status"] == "ok" for r in done.values())
    assert {path.stem for path in out.glob("*.mp4")} == set(done), "every clip on disk is in the log"
    assert f"interrupted: {len(done)} of 30 " in last


def test_overwrite_redoes_finished_clips(face_clip, prepared, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(prepared[0], out)
    before = (out / "face.mp4").stat().st_mtime_ns
    assert "already done" in run_cli("prep-lips", str(face_clip), "-o", str(out)).stderr.decode()
    assert (out / "face.mp4").stat().st_mtime_ns == before
    assert run_cli("prep-lips", str(face_clip), "-o", str(out), "--overwrite").returncode == 0
    assert (out / "face.mp4").stat().st_mtime_ns != before


def test_manifest_rows_for_clips_with_transcripts_with_proper_csv_quoting(face_clip, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(face_clip, media / "a.mp4")
    shutil.copy(face_clip, media / "b.mp4")
    (media / "a.txt").write_text("Text:  HELLO, WORLD OF LIPS\nConf: 3\n\nWORD START END ASDSCORE\nHELLO 0.1 0.4 2.0\n")
    out = tmp_path / "dataset"
    result = run_cli("prep-lips", str(media), "-o", str(out), "--manifest")
    assert result.returncode == 0 and "manifest: 1 clips" in result.stderr.decode()
    rows = list(csv.reader((out / "manifest.csv").open()))
    assert rows == [["dataset", "a.mp4", str(FRAMES), "", "hello, world of lips"]]
    [line] = (out / "manifest.jsonl").read_text().splitlines()
    assert json.loads(line) == {"dataset": "dataset", "video": "a.mp4", "audio": "a.wav", "frames": FRAMES, "text": "hello, world of lips"}


def test_debug_crops_write_a_contact_sheet(face_clip, tmp_path):
    assert run_cli("prep-lips", str(face_clip), "-o", str(tmp_path), "--debug-crops").returncode == 0
    sheet = cv2.imread(str(tmp_path / "face.crops.png"))
    assert sheet is not None and sheet.shape[0] >= 160 and sheet.shape[1] >= 4 * 320
    assert sheet[..., 2].max() > 200  # the landmarks are drawn


def test_a_clip_with_unusable_landmarks_or_blocked_outputs_fails_alone(face_clip, prepared, tmp_path):
    inputs, marks, out = tmp_path / "inputs", tmp_path / "marks", tmp_path / "out"
    for folder in (inputs, marks):
        folder.mkdir()
    with np.load(prepared[0] / "face.landmarks.npz") as data:
        good = dict(data)
    for name in ("good", "nan", "huge", "scores", "blocked"):
        shutil.copy(face_clip, inputs / f"{name}.mp4")
        np.savez(marks / f"{name}.landmarks.npz", **good)
    broken = {"nan": ("points", np.nan), "huge": ("points", 1e300)}
    for name, (key, value) in broken.items():
        arrays = dict(good)
        arrays[key] = arrays[key].copy()
        arrays[key][3] = value
        np.savez(marks / f"{name}.landmarks.npz", **arrays)
    np.savez(marks / "scores.landmarks.npz", **{**good, "scores": good["scores"][:3]})
    (out / "blocked.mp4").mkdir(parents=True)  # a folder where the clip's crops should go
    result = run_cli("prep-lips", str(inputs), "-o", str(out), "--detector", f"landmarks:{marks}", "--workers", "1")
    assert result.returncode == 3 and "Traceback" not in result.stderr.decode(), result.stderr.decode()
    codes = {name: record["error"]["code"] if record["error"] else "ok" for name, record in records(out).items()}
    assert codes == {"good": "ok", "nan": "E_LANDMARKS", "huge": "E_LANDMARKS", "scores": "E_LANDMARKS", "blocked": "E_WRITE"}
    assert not list(out.rglob("*.part")) and (out / "good.mp4").is_file()


def test_backend_problems_are_one_line_with_a_fix(face_clip, tmp_path):
    result = run_cli("prep-lips", str(face_clip), "-o", str(tmp_path), "--detector", "face-alignment")
    assert result.returncode == 5
    [line] = result.stderr.decode().strip().splitlines()
    assert "face-alignment" in line and ("pip install" in line or "copy them" in line)
    result = run_cli("prep-lips", str(face_clip), "-o", str(tmp_path), "--detector", "magic")
    assert result.returncode == 2 and "unknown landmark backend 'magic'" in result.stderr.decode()
    result = run_cli("prep-lips", str(face_clip), "-o", str(tmp_path), "--face-select", "loudest")
    assert result.returncode == 2 and "--face-select 'loudest'" in result.stderr.decode()
    result = run_cli("prep-lips", str(face_clip), "-o", str(tmp_path), "--detector", "landmarks:/nonexistent/x.npz")
    assert result.returncode == 2 and "no such landmarks file" in result.stderr.decode()
    marks = tmp_path / "face.landmarks.npz"
    marks.write_bytes(b"checked before it is read")
    other = tmp_path / "other.mp4"
    other.write_bytes(face_clip.read_bytes())
    for command in (["prep-lips"], ["transcribe", "--model", "demo"]):  # one file holds one clip's frames
        out = tmp_path / f"{command[0]}-out"
        result = run_cli(*command, str(face_clip), str(other), "-o", str(out), "--detector", f"landmarks:{marks}")
        assert result.returncode == 2 and result.stderr.decode().count("\n") == 1, result.stderr.decode()
        assert "one landmarks file for 2 clips; give a directory" in result.stderr.decode() and not out.exists()


def test_dlib_backend_crops_a_real_face(face_clip, tmp_path):
    assert run_cli("prep-lips", str(face_clip), "-o", str(tmp_path), "--detector", "dlib").returncode == 0
    record = records(tmp_path)["face"]
    assert record["detector"] == "dlib" and record["face_coverage"] == 1.0


def test_inputs_from_directories_globs_and_lists_mirror_the_tree(tmp_path, monkeypatch):
    for name in ("a/x.mp4", "a/sub/y.mkv", "a/sub/notes.txt", "b/z.wav", "a/.hidden.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert [f.clip_id for f in collect_inputs(["a"])] == ["x", "sub/y"]
    assert [f.clip_id for f in collect_inputs(["a/**/*.mkv"])] == ["sub/y"]
    (tmp_path / "list.txt").write_text("# clips\na/sub/y.mkv\n\nb/z.wav\n")
    assert [f.clip_id for f in collect_inputs(["@list.txt"])] == ["a/sub/y", "b/z"]
    assert [f.clip_id for f in collect_inputs(["a"], exclude=tmp_path / "a" / "sub")] == ["x"]
    from omniavsr_cli.errors import InputError

    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="would both be written as 'x'; pass their common parent directory"):
        collect_inputs(["a/x.mp4", "c/x.mp4"])
    (tmp_path / "c" / "x.mkv").write_bytes(b"")
    with pytest.raises(InputError, match="would both be written as 'x'; rename one of them"):
        collect_inputs(["c"])  # one folder, one name, two extensions: no directory argument separates them
    with pytest.raises(InputError, match="no files match"):
        collect_inputs(["a/*.avi"])
    with pytest.raises(InputError, match=r"missing.txt: cannot read this input list \(No such file or directory\); check the path"):
        collect_inputs(["@missing.txt"])
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00clip.mp4")
    with pytest.raises(InputError, match="binary.txt: the input list is not UTF-8 text"):
        collect_inputs(["@binary.txt"])


def test_a_file_name_that_is_not_utf8_is_prepared_and_recorded(face_clip, tmp_path):
    media, out = tmp_path / "media", tmp_path / "out"
    media.mkdir()
    stem = b"caf\xe9".decode(errors="surrogateescape")
    try:
        shutil.copy(face_clip, media / f"{stem}.mp4")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes only UTF-8 names")
    (media / f"{stem}.txt").write_text("place blue at f two now\n", encoding="utf-8")
    shutil.copy(face_clip, media / "zz.mp4")  # after it: the batch goes on
    result = run_cli("prep-lips", str(media), "-o", str(out), "--manifest")
    assert result.returncode == 0, result.stderr.decode()
    assert {k: r["status"] for k, r in records(out).items()} == {stem: "ok", "zz": "ok"}
    assert (out / f"{stem}.mp4").is_file() and (out / f"{stem}.wav").is_file()
    assert b"caf\xe9.mp4" in (out / "manifest.csv").read_bytes()  # the csv names the file by its bytes
    assert os.fsencode(json.loads((out / "manifest.jsonl").read_bytes())["video"]) == b"caf\xe9.mp4"
    assert run_cli("prep-lips", str(media), "-o", str(out)).returncode == 0  # a rerun reads its record back
