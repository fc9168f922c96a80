"""The media front end on media generated here with the real ffmpeg: probing, 16 kHz audio, 25 fps video,
audio/video sync, streaming in bounded chunks, and every error case with its code."""

import subprocess

import numpy as np
import pytest

from omniavsr_cli.errors import MediaError
from omniavsr_cli.media import decode
from omniavsr_cli.media.decode import AudioSpool, load_audio, load_video, stream_audio, stream_video
from omniavsr_cli.media.ffmpeg import find_ffmpeg
from omniavsr_cli.media.probe import probe
from omniavsr_cli.timebase import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME


def ffmpeg(*args: str, input: bytes | None = None) -> None:
    subprocess.run([find_ffmpeg().path, "-nostdin", "-y", "-loglevel", "error", *args], input=input, check=True)


def numbered_video(path, frames: int, rate: str, size: int = 32, extra: tuple[str, ...] = ()) -> None:
    """Lossless video whose frame k has brightness 4*k, so a decoded frame tells which source frame it is."""
    pixels = np.zeros((frames, size, size, 3), np.uint8)
    for k in range(frames):
        pixels[k] = (4 * k) % 256
    ffmpeg(
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{size}x{size}",
        "-r",
        rate,
        "-i",
        "-",
        *extra,
        "-c:v",
        "ffv1",
        str(path),
        input=pixels.tobytes(),
    )


def source_index(frames: np.ndarray) -> np.ndarray:
    return frames[:, 0, 0, 0].astype(int) // 4


@pytest.mark.parametrize("rate, fps", [("30", 30.0), ("30000/1001", 30000 / 1001), ("60", 60.0), ("25", 25.0)])
def test_any_frame_rate_comes_out_at_25_fps_by_timestamp(tmp_path, rate, fps):
    path = tmp_path / "v.mkv"
    numbered_video(path, 60 if fps > 40 else 50, rate)  # 60 frames stay below brightness wrap-around
    info = probe(path)
    assert info.video.fps == pytest.approx(fps, rel=1e-3) and not info.video.variable_frame_rate
    frames = load_video(path)
    duration = (60 if fps > 40 else 50) / fps
    assert abs(len(frames) - duration * FPS) <= 1
    shown_at = source_index(frames) / fps  # when each chosen source frame starts
    # ffmpeg's fps filter keeps, for output frame i, the last source frame whose time rounds to i/25.
    assert np.all(np.abs(shown_at - np.arange(len(frames)) / FPS) <= 0.5 / FPS + 1e-6)
    assert np.all(np.diff(source_index(frames)) >= 0)


def test_variable_frame_rate_is_detected_and_resampled_by_timestamp(tmp_path):
    import av

    path = tmp_path / "vfr.mkv"
    # Irregular timestamps (a stretch at 1/30 s, then gaps), as phones record.
    numbered_video(path, 40, "30", extra=("-vf", "setpts='(floor(N/2)*0.075+mod(N,2)*0.05)/TB'", "-fps_mode", "vfr"))
    info = probe(path)
    assert info.video.variable_frame_rate
    with av.open(str(path)) as container:  # the source timestamps, read independently, in ms (Matroska's unit)
        stream = container.streams.video[0]
        stamps_ms = np.array([round(float(f.pts * stream.time_base) * 1000) for f in container.decode(stream)])
    assert len(set(np.diff(stamps_ms))) > 1
    frames = load_video(path)
    slot = (stamps_ms * FPS + 500) // 1000  # the output frame each source timestamp rounds to
    expected = [int(np.nonzero(slot <= i)[0].max()) for i in range(len(frames))]
    assert list(source_index(frames)) == expected  # the last source frame shown by time i/25


def test_audio_is_16k_mono_float32_with_samples_in_place(tmp_path):
    rate, seconds, click = 44100, 2.0, 1.25
    stereo = np.zeros((int(rate * seconds), 2), np.float32)
    stereo[int(click * rate), :] = 0.9  # a click in both channels
    path = tmp_path / "a.wav"
    ffmpeg("-f", "f32le", "-ar", str(rate), "-ac", "2", "-i", "-", "-c:a", "pcm_f32le", str(path), input=stereo.tobytes())
    info = probe(path)
    assert (info.audio.sample_rate, info.audio.channels, info.video) == (rate, 2, None)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - seconds * SAMPLE_RATE) <= 128
    assert abs(int(np.argmax(np.abs(audio))) - click * SAMPLE_RATE) <= 3


def test_frame_i_covers_samples_640i_even_when_video_starts_late(tmp_path):
    """Video starting 0.4 s after the audio: frame 10 must be the first video frame, in step with sample 6400."""
    video, audio, both = tmp_path / "v.mkv", tmp_path / "a.wav", tmp_path / "av.mkv"
    numbered_video(video, 50, "25")
    pcm = np.zeros(3 * SAMPLE_RATE, np.float32)
    pcm[int(1.4 * SAMPLE_RATE)] = 0.9  # 1.0 s into the video, 1.4 s into the file
    ffmpeg("-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "-", str(audio), input=pcm.tobytes())
    ffmpeg("-itsoffset", "0.4", "-i", str(video), "-i", str(audio), "-map", "0:v", "-map", "1:a", "-c", "copy", str(both))
    frames, samples = load_video(both), load_audio(both)
    index = source_index(frames)
    assert np.all(index[:10] == 0) and index[10] == 0 and index[11] == 1  # padded with the first frame
    assert index[35] == 25  # source frame 25 (1.0 s into the video) is output frame 35 (1.4 s)
    click = int(np.argmax(np.abs(samples)))
    assert abs(click - 35 * SAMPLES_PER_FRAME) <= 3


def test_rotated_phone_video_comes_out_upright(tmp_path):
    plain, rotated = tmp_path / "r0.mp4", tmp_path / "r90.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=1", str(plain))
    ffmpeg("-display_rotation", "90", "-i", str(plain), "-c", "copy", str(rotated))
    info = probe(rotated)
    assert info.video.rotation in (90, 270) and info.video.display_size == (48, 64)
    assert load_video(rotated).shape[1:] == (64, 48, 3)


def test_streaming_yields_bounded_chunks_equal_to_the_whole(tmp_path):
    path = tmp_path / "v.mkv"
    numbered_video(path, 50, "25", size=32)
    frame_bytes = 32 * 32 * 3
    chunks = list(stream_video(path, max_chunk_bytes=7 * frame_bytes))
    assert [len(c) for c in chunks] == [7] * 7 + [1]
    assert np.array_equal(np.concatenate(chunks), load_video(path))
    audio_path = tmp_path / "a.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=3", str(audio_path))
    pieces = list(stream_audio(audio_path, chunk_seconds=1.0))
    assert [len(p) for p in pieces[:2]] == [SAMPLE_RATE, SAMPLE_RATE]
    assert np.array_equal(np.concatenate(pieces), load_audio(audio_path))


def test_spooled_audio_reads_back_any_stretch_exactly_and_holds_none_of_it_in_memory(tmp_path):
    audio_path = tmp_path / "a.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=3", str(audio_path))
    whole = load_audio(audio_path)
    with AudioSpool() as spool:
        for piece in stream_audio(audio_path, chunk_seconds=0.7):
            spool.append(piece)
        assert spool.samples == len(whole)
        for start, end in [(0, 640), (11_200, 29_000), (40_000, 10**9), (-5, 3)]:
            assert np.array_equal(spool.read(start, end), whole[max(start, 0) : end])
        assert spool.read(len(whole), len(whole) + 100).size == 0
        assert spool.read(0, 10).flags.writeable
        assert all(not isinstance(value, np.ndarray) for value in vars(spool).values())  # the samples are on disk


def test_stopping_early_ends_the_ffmpeg_process(tmp_path):
    path = tmp_path / "v.mkv"
    numbered_video(path, 50, "25")
    generator = stream_video(path, max_chunk_bytes=32 * 32 * 3)
    next(generator)
    generator.close()  # must not hang or leave ffmpeg running
    assert len(load_video(path)) == 50


def test_gif_and_audio_formats(tmp_path):
    gif, flac, mp3 = tmp_path / "a.gif", tmp_path / "a.flac", tmp_path / "a.mp3"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=40x30:rate=10:duration=1", str(gif))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=22050:duration=1", str(flac))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=22050:duration=1", str(mp3))
    assert abs(len(load_video(gif)) - 25) <= 1
    for path in (flac, mp3):
        assert abs(len(load_audio(path)) - SAMPLE_RATE) <= 1200  # mp3 adds encoder padding


def expect_error(code: str, function, *args):
    with pytest.raises(MediaError) as info:
        result = function(*args)
        if hasattr(result, "__next__"):
            list(result)
    assert info.value.code == code
    assert "\n" not in str(info.value)
    return str(info.value)


def test_error_cases_have_distinct_codes(tmp_path):
    expect_error("E_NOT_FOUND", probe, tmp_path / "absent.mp4")
    expect_error("E_NOT_FOUND", load_audio, tmp_path / "absent.mp4")
    (tmp_path / "notes.txt").write_text("not a video at all")
    expect_error("E_NOT_MEDIA", probe, tmp_path / "notes.txt")
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert "empty" in expect_error("E_NOT_MEDIA", probe, tmp_path / "empty.mp4")
    good = tmp_path / "good.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=2", "-f", "lavfi", "-i", "sine=duration=2", "-shortest", str(good))
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[:3000])
    expect_error("E_CORRUPT", probe, tmp_path / "cut.mp4")


def test_stream_cut_short_is_reported_as_corrupt(tmp_path):
    whole, cut = tmp_path / "whole.mkv", tmp_path / "cut.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=6", "-c:v", "libx264", "-preset", "ultrafast", str(whole))
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert "its header declares" in expect_error("E_CORRUPT", stream_video, cut)


def test_missing_streams_leave_the_other_usable(tmp_path):
    silent, sound = tmp_path / "silent.mp4", tmp_path / "sound.m4a"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=1", str(silent))
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(sound))
    expect_error("E_NO_AUDIO", stream_audio, silent)
    assert len(load_video(silent)) == 25
    expect_error("E_NO_VIDEO", stream_video, sound)
    assert abs(len(load_audio(sound)) - SAMPLE_RATE) <= 1200
    assert probe(sound).video is None and probe(silent).audio is None


def test_decode_constants_match_the_model():
    assert (FPS, SAMPLE_RATE, SAMPLES_PER_FRAME) == (25, 16000, 640)
    assert decode.DEFAULT_CHUNK_BYTES <= 256 * 2**20


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_a_video_stream_that_ends_before_the_audio_is_complete_not_corrupt(tmp_path, container):
    """Recordings joined from parts can hold 4 s of video and 6 s of sound: each stream declares its own length."""
    path = tmp_path / f"early.{container}"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25:duration=4",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=6",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(path),
    )
    assert len(load_video(path)) == 100 and len(load_audio(path)) == pytest.approx(6 * SAMPLE_RATE, abs=1200)
    info = probe(path)
    assert info.duration == pytest.approx(6.0, abs=0.1) and info.video.duration == pytest.approx(4.0, abs=0.1)


def test_a_ctrl_c_inside_interrupts_held_is_raised_only_as_the_block_ends():
    import os
    import signal
    import threading
    import time

    from omniavsr_cli.media.encode import interrupts_held

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT is handled in the main thread only")
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a batch job may ignore it)
    # Another thread the kernel may hand the signal to: with the signal masked in the main thread it went there,
    # and Python raised it inside the block all the same.
    sleeper = threading.Thread(target=time.sleep, args=(0.5,), daemon=True)
    sleeper.start()
    finished = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts_held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)
                finished.append(True)
        assert finished, "the block ran to its end before the Ctrl-C was raised"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the handler is put back"
    finally:
        signal.signal(signal.SIGINT, before)
