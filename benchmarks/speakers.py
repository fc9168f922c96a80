"""Who is speaking: how `omniavsr transcribe --face-select speaker` attributes speech, against the largest face.

    .venv/bin/python benchmarks/speakers.py WORK [--clips 20] [--seed 41] [--sentences 3 4] [--model demo]
        [--modes avsr auto] [--selects speaker largest] [--rates 4,2] [--stages] [--oracle] [--code DIR]
    .venv/bin/python benchmarks/speakers.py WORK --picture docs/figures/speakers-sync.png [--seed 41]

synth-corpus makes three held-out corpora (the test split) per sentence count, --clips shared between the counts;
the clips of count n use seed --seed + its position in --sentences, so no two corpora repeat a sentence:

    two  --faces 2 --distractor talking             two faces taking turns, the one not heard mouthing other text
    off  --faces 2 --distractor talking --offscreen  both faces mouth other text, a third voice says everything
    one  --faces 1                                  the same sentences (same seed and count), one face, one voice

Every corpus is transcribed with each --selects rule in each --mode (JSON out, --rates). Scores per clip:

- attribution: for each sentence of the record (`speakers`; a one-face clip's sentences are all face 0's),
  the speaker whose segments (their words, when there are words) overlap it longest; a segment's "face N"
  counts as the drawn face whose centre is nearest its face_box centre (x), "off-screen" as off-screen;
  right when it is the record's face. A sentence that no labelled segment overlaps counts as wrong.
- off-screen chunks: the share of a clip's segments whose speaker is "off-screen" (what the off corpus
  should have, and the others should not).
- WER (lrs3 normaliser, omniavsr_cli.scoring) against the whole clip's text; the table gives the corpus WER
  and the clips' mean and standard deviation.
- time: each input's seconds from run.jsonl (preparation to last segment; inputs overlap the model), and the
  wall time of the whole transcribe process (model loading included). --stages also times every clip of the
  two-face corpora in-process, stage by stage, as `omniavsr bench` does (which has no --face-select).

--oracle also transcribes each face of the two-face clips alone (the frame's half it is drawn in, cut out with
ffmpeg, as a one-face clip) and takes each sentence from its speaker's half: attribution made perfect, which
is what the model itself does with these faces, for comparison with --face-select speaker. Each sentence's
words are the transcript's words nearest its span.

A last table splits the WER of the two-face and one-face runs (and the oracle) by the face that says each
sentence in the two-face clips: the one-face clips say the same sentences with face 0's portrait, so their
"face 1" column is face 1's words read from the face the demo model was trained on.

WORK keeps corpora and transcripts: a rerun only makes and decodes what is missing. --code runs the omniavsr_cli
of another checkout (`git archive COMMIT | tar -x -C DIR`), to measure before a change. --picture draws, for the
first two-face clip of --seed, both faces' mouth opening, the audio envelope, the speaker turns and each face's
sync score per 2-s window (lips/synchrony.py), for docs/speakers.md.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from omniavsr_cli.scoring.scorer import score_texts

REPO = Path(__file__).resolve().parents[1]
KINDS = {
    "two": ["--faces", "2", "--distractor", "talking"],
    "off": ["--faces", "2", "--distractor", "talking", "--offscreen"],
    "one": ["--faces", "1"],
}
OFF_SCREEN = "off-screen"
NONE = "none"  # a sentence no labelled segment overlaps
WINDOW_FRAMES = 50  # the picture's sync windows: 2 s, the shortest the measurements in docs/speakers.md cover
WINDOW_STEP = 5  # 0.2 s
STAGES = ("probe", "decode_audio", "vad", "video", "landmarks", "encoders", "llm", "words", "wall")  # bench's order


def omniavsr(code: Path, *arguments: str) -> float:
    """Run the CLI of the checkout CODE as a user does; its wall time in seconds."""
    print("$ omniavsr " + shlex.join(arguments), file=sys.stderr)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "omniavsr_cli", *arguments], cwd=code, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def make_corpus(code: Path, folder: Path, kind: str, clips: int, seed: int, sentences: int) -> Path:
    if not (folder / "corpus.jsonl").exists() or len(read_records(folder)) < clips:
        omniavsr(
            code,
            "synth-corpus", str(folder), "--clips", str(clips), "--seed", str(seed), "--split", "test",
            "--sentences", str(sentences), *KINDS[kind], "--quiet",
        )  # fmt: skip
    return folder


def read_records(corpus: Path) -> dict[str, dict]:
    lines = (corpus / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return {record["id"]: record for record in map(json.loads, lines)}


def transcribe(code: Path, corpus: Path, out: Path, model: str, mode: str, rates: str, select: str) -> float:
    """Transcribe the corpus's clips into OUT (once: the wall time is kept in OUT/wall.json)."""
    wall_file = out / "wall.json"
    if not wall_file.exists():
        (out / "run.jsonl").unlink(missing_ok=True)  # an interrupted run's log would count its inputs twice
        wall = omniavsr(
            code,
            "transcribe", str(corpus / "clips"), "--model", model, "--mode", mode, "--rates", rates,
            "--face-select", select, "-f", "json", "-o", str(out), "--quiet",
        )  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        wall_file.write_text(json.dumps({"seconds": wall}) + "\n")
    return json.loads(wall_file.read_text())["seconds"]


def oracle_halves(code: Path, corpus: Path, work: Path, model: str, mode: str, rates: str) -> list[Path]:
    """Each face of the two-face corpus transcribed alone (its half of the frame cut out): the two transcript folders."""
    from omniavsr_cli.media.ffmpeg import find_ffmpeg

    records = read_records(corpus)
    halves = []
    for face in (0, 1):
        clips = work / f"halves-{corpus.name}" / f"face{face}" / "clips"
        clips.mkdir(parents=True, exist_ok=True)
        for name in records:
            target = clips / f"{name}.mp4"
            if not target.exists():
                square = f"ih:ih:{face}*ih:0"  # the faces are drawn side by side, each in a square as high as the frame
                subprocess.run(
                    [find_ffmpeg().path, "-y", "-loglevel", "error", "-i", str(corpus / "clips" / f"{name}.mp4"),
                     "-vf", f"crop={square}", "-c:a", "copy", str(target)],
                    check=True,
                )  # fmt: skip
        out = work / "transcripts" / f"halves-{corpus.name}-face{face}-{mode}"
        transcribe(code, clips.parent, out, model, mode, rates, "largest")
        halves.append(out)
    return halves


def oracle_transcripts(corpus: Path, halves: list[Path]) -> dict[str, dict]:
    """Per clip, a transcript whose segments are, for each sentence, its speaker's half's segments that overlap it."""
    transcripts = {}
    for name, record in read_records(corpus).items():
        segments = [json.loads((out / f"{name}.json").read_text(encoding="utf-8"))["segments"] for out in halves]
        spans = [(turn["start"], turn["end"]) for turn in record["speakers"]]
        chosen = []
        for index, turn in enumerate(record["speakers"]):
            for segment in segments[turn["face"]]:
                pieces = segment.get("words") or [segment]
                chosen += [piece for piece in pieces if nearest_span((piece["start"] + piece["end"]) / 2, spans) == index]
        transcripts[name] = {"segments": [{"start": p["start"], "end": p["end"], "text": p.get("word", p.get("text"))} for p in chosen]}
        transcripts[name]["text"] = " ".join(piece["text"].strip() for piece in transcripts[name]["segments"])
    return transcripts


# ------------------------------------------------------------------------------------------------ scoring


def face_centres(landmarks_npz: Path) -> np.ndarray:
    """x of each drawn face's centre (its landmarks' box, averaged over the clip), left face first."""
    arrays = np.load(landmarks_npz)
    points = arrays["faces"] if "faces" in arrays else arrays["points"][:, None]  # (T, faces, 68, 2)
    xs = points[..., 0]
    return ((xs.min(axis=2) + xs.max(axis=2)) / 2).mean(axis=0)


def segment_face(segment: dict, centres: np.ndarray) -> int | str | None:
    """The drawn face (index) or "off-screen" a segment is attributed to; None when it names no one usable."""
    speaker, box = segment.get("speaker"), segment.get("face_box")
    if speaker == OFF_SCREEN:
        return OFF_SCREEN
    if speaker is None or box is None:
        return None
    return int(np.argmin(np.abs(centres - (box[0] + box[2]) / 2)))


def truth_turns(record: dict) -> list[dict]:
    """Who says each sentence: the record's speakers, or (one-face clips) face 0 for every sentence."""
    return record.get("speakers") or [{"start": start, "end": end, "face": 0} for start, end in record["sentences"]]


def attribute(transcript: dict, turns: list[dict], centres: np.ndarray) -> list[int | str]:
    """Per turn, the face (or off-screen, or NONE) whose segments or words overlap it longest."""
    pieces = []  # (start, end, face) of each word, or of each segment without words
    for segment in transcript["segments"]:
        face = segment_face(segment, centres)
        if face is not None:
            spans = segment.get("words") or [segment]
            pieces += [(piece["start"], piece["end"], face) for piece in spans]
    chosen = []
    for turn in turns:
        overlap: dict[int | str, float] = {}
        for start, end, face in pieces:
            shared = min(end, turn["end"]) - max(start, turn["start"])
            if shared > 0:
                overlap[face] = overlap.get(face, 0.0) + shared
        chosen.append(max(overlap, key=overlap.get) if overlap else NONE)
    return chosen


def score_run(corpus: Path, out: Path) -> dict:
    """Per-clip numbers of one transcribe run over one corpus."""
    records = read_records(corpus)
    ids = sorted(records)
    transcripts = {name: json.loads((out / f"{name}.json").read_text(encoding="utf-8")) for name in ids}
    report = score_texts([transcripts[name]["text"] for name in ids], [records[name]["text"] for name in ids])
    log = {entry["id"]: entry for entry in map(json.loads, (out / "run.jsonl").read_text(encoding="utf-8").splitlines())}
    clips = []
    for name, utterance in zip(ids, report.systems[0].utterances, strict=True):
        transcript, turns = transcripts[name], truth_turns(records[name])
        chosen = attribute(transcript, turns, face_centres(corpus / "clips" / f"{name}.landmarks.npz"))
        segments = transcript["segments"]
        clips.append(
            {
                "id": name,
                "sentences": len(turns),
                "attributed": sum(face == turn["face"] for face, turn in zip(chosen, turns, strict=True)),
                "chosen": chosen,
                "off_screen": sum(s.get("speaker") == OFF_SCREEN for s in segments) / len(segments) if segments else math.nan,
                "labelled": sum(s.get("speaker") is not None for s in segments),
                "segments": len(segments),
                "wer": utterance.counts.rate,
                "counts": utterance.counts,
                "seconds": log[name]["seconds"],
            }
        )
    return {"clips": clips}


def nearest_span(time: float, spans: list[tuple[float, float]]) -> int:
    """Index of the sentence span that holds TIME, or else the one nearest it."""
    return min(range(len(spans)), key=lambda k: max(spans[k][0] - time, time - spans[k][1], 0.0))


def sentence_texts(record: dict) -> list[str]:
    """The words of each sentence of a record, from its word times."""
    texts = [
        " ".join(word["word"] for word in record["words"] if start - 1e-3 <= word["start"] and word["end"] <= end + 1e-3)
        for start, end in record["sentences"]
    ]
    assert " ".join(texts) == record["text"], record["id"]
    return texts


def sentence_hypotheses(transcript: dict, spans: list[tuple[float, float]]) -> list[str]:
    """What a transcript says in each sentence: its words (or segments without words) by the span nearest their middle."""
    said: list[list[str]] = [[] for _ in spans]
    for segment in transcript["segments"]:
        for piece in segment.get("words") or [segment]:
            said[nearest_span((piece["start"] + piece["end"]) / 2, spans)].append(piece.get("word", piece.get("text")).strip())
    return [" ".join(words) for words in said]


def wer_by_face(transcripts: dict[str, dict], records: dict[str, dict], speakers: dict[str, dict]) -> dict[int, object]:
    """Word edit counts of the sentences each drawn face says in the two-face corpus (SPEAKERS: its records).

    A one-face corpus has the same sentences in the same order (same seed and count), all said by face 0's portrait:
    its numbers for "face 1's sentences" are those words read from the face the model was trained on.
    """
    hypotheses: dict[int, list[str]] = {0: [], 1: []}
    references: dict[int, list[str]] = {0: [], 1: []}
    for name, record in records.items():
        texts = sentence_texts(record)
        heard = sentence_hypotheses(transcripts[name], [tuple(span) for span in record["sentences"]])
        for turn, text, hypothesis in zip(speakers[name]["speakers"], texts, heard, strict=True):
            hypotheses[turn["face"]].append(hypothesis)
            references[turn["face"]].append(text)
    return {face: score_texts(hypotheses[face], references[face]).systems[0].words for face in hypotheses}


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    values = [v * scale for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {sd:.{digits}f}"


def table_row(label: str, clips: list[dict], wall: float) -> str:
    sentences = sum(c["sentences"] for c in clips)
    attributed = sum(c["attributed"] for c in clips)
    counts = clips[0]["counts"]
    for clip in clips[1:]:
        counts = counts + clip["counts"]
    labelled = sum(c["labelled"] for c in clips)
    segments = sum(c["segments"] for c in clips)
    attribution = "(no speakers)"
    if labelled:
        attribution = f"{attributed / sentences:.1%} ({spread([c['attributed'] / c['sentences'] for c in clips], 100)})"
    return (
        f"| {label} | {len(clips)} | {attribution} "
        f"| {spread([c['off_screen'] for c in clips], 100)} | {labelled}/{segments} "
        f"| {counts.rate:.1%} ({spread([c['wer'] for c in clips], 100)}) "
        f"| {spread([c['seconds'] for c in clips], digits=2)} | {wall:.0f} |"
    )


# ------------------------------------------------------------------------------------------------ stages


# In a child process, so that it runs the omniavsr_cli of --code.
STAGES_CHILD = r"""
import json, sys
from pathlib import Path
from omniavsr_cli.bench import run_bench
from omniavsr_cli.model.loading import load_model
from omniavsr_cli.transcribe import TranscribeOptions

clips, model_name, mode, rates, select = sys.argv[1:]
model = load_model(model_name)
options = TranscribeOptions(mode=mode, rates=tuple(int(r) for r in rates.split(",")), face_select=select)
clips = sorted(Path(clips).glob("*.mp4"))
run_bench(model, clips[:1], options)  # the first call's one-off costs (threads, kernels) are not any clip's
times = {}
for clip in clips:
    result = run_bench(model, [clip], options)
    for stage, seconds in {**result.stage_seconds, "wall": result.wall_seconds}.items():
        times.setdefault(stage, []).append(seconds)
print(json.dumps(times))
"""


def stage_times(code: Path, corpus: Path, model: str, mode: str, rates: str, select: str) -> dict[str, list[float]]:
    """Seconds per stage for each clip, each clip timed on its own as `omniavsr bench` times a run."""
    print(f"$ (stages) {corpus / 'clips'} --mode {mode} --face-select {select}", file=sys.stderr)
    command = [sys.executable, "-c", STAGES_CHILD, str(corpus / "clips"), model, mode, rates, select]
    return json.loads(subprocess.run(command, cwd=code, check=True, capture_output=True, text=True).stdout)


# ------------------------------------------------------------------------------------------------ picture


def picture(code: Path, work: Path, path: Path, seed: int) -> None:
    """Mouth opening of both faces, the audio envelope and each face's per-window sync score, turns shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from omniavsr_cli.lips.speakers import SYNC_LAG_FRAMES
    from omniavsr_cli.lips.synchrony import audio_envelope, mouth_opening, sync_score
    from omniavsr_cli.media.decode import load_audio
    from omniavsr_cli.timebase import FPS

    corpus = make_corpus(code, work / f"picture-{seed}", "two", 1, seed, 3)
    record = next(iter(read_records(corpus).values()))
    faces = np.load(corpus / "clips" / f"{record['id']}.landmarks.npz")["faces"]
    openings = [mouth_opening(faces[:, face]) for face in (0, 1)]
    envelope = audio_envelope(load_audio(corpus / "clips" / f"{record['id']}.mp4"))[: len(faces)]
    seconds = np.arange(len(faces)) / FPS
    starts = range(0, len(faces) - WINDOW_FRAMES + 1, WINDOW_STEP)
    centres = [(start + WINDOW_FRAMES / 2) / FPS for start in starts]
    scores = [
        [
            sync_score(opening[start : start + WINDOW_FRAMES], envelope[start : start + WINDOW_FRAMES], SYNC_LAG_FRAMES)[0]
            for start in starts
        ]
        for opening in openings
    ]
    colours, names = ("tab:blue", "tab:orange"), ("left face", "right face")
    figure, axes = plt.subplots(3, 1, figsize=(8, 5.4), sharex=True, gridspec_kw={"hspace": 0.12})
    for axis in axes:
        for turn in record["speakers"]:
            axis.axvspan(turn["start"], turn["end"], color=colours[turn["face"]], alpha=0.13, linewidth=0)
    axes[0].plot(seconds, envelope, color="0.2", linewidth=1)
    axes[0].set_ylabel("audio RMS")
    for turn in record["speakers"]:
        axes[0].text((turn["start"] + turn["end"]) / 2, 0.93, f"{names[turn['face']]} heard", transform=axes[0].get_xaxis_transform(),
                     ha="center", va="top", fontsize=8, color=colours[turn["face"]])  # fmt: skip
    for face in (0, 1):
        axes[1].plot(seconds, openings[face], color=colours[face], linewidth=1, label=names[face])
        axes[2].plot(centres, scores[face], color=colours[face], linewidth=1.4, marker=".", markersize=3, label=names[face])
    axes[1].set_ylabel("mouth opening")
    axes[1].legend(loc="upper right", fontsize=8, ncol=2, frameon=False)
    axes[2].set_ylabel("sync score\n(2-s window)")
    axes[2].axhline(0, color="0.6", linewidth=0.6)
    axes[2].set_ylim(-0.25, 1)
    axes[2].set_xlabel("seconds (shading: who is heard; each score is plotted at its window's centre)")
    axes[0].set_title(
        f"synth-corpus --faces 2 --distractor talking --seed {seed} --split test --sentences 3: clip {record['id']}", fontsize=9
    )
    for axis in axes:
        axis.tick_params(labelsize=8)
        axis.margins(x=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    print(f"{path}: {path.stat().st_size / 1024:.0f} KB", file=sys.stderr)


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    parser.add_argument("--clips", type=int, default=20, help="clips per corpus kind, shared between the sentence counts")
    parser.add_argument("--seed", type=int, default=41)
    parser.add_argument("--sentences", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--rates", default="4,2")
    parser.add_argument("--modes", nargs="+", default=["avsr", "auto"])
    parser.add_argument("--selects", nargs="+", default=["speaker", "largest"], help="--face-select rules to compare")
    parser.add_argument("--stages", action="store_true", help="also time the two-face clips stage by stage (in-process)")
    parser.add_argument("--oracle", action="store_true", help="also read each sentence from its speaker's face alone")
    parser.add_argument("--picture", type=Path, help="draw the synchrony picture here instead")
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose omniavsr_cli runs (default: this one)")
    arguments = parser.parse_args()
    work, code = arguments.work.resolve(), arguments.code.resolve()
    if arguments.picture:
        picture(code, work, arguments.picture.resolve(), arguments.seed)
        return
    counts = arguments.sentences
    shares = [arguments.clips // len(counts) + (k < arguments.clips % len(counts)) for k in range(len(counts))]
    runs: dict[tuple[str, str, str], list[tuple[Path, Path]]] = {}  # (kind, mode, select) -> (corpus, transcripts)
    for k, (sentences, clips) in enumerate(zip(counts, shares, strict=True)):
        for kind in KINDS:
            corpus = make_corpus(code, work / f"{kind}-{sentences}", kind, clips, arguments.seed + k, sentences)
            for mode in arguments.modes:
                for select in arguments.selects:
                    out = work / "transcripts" / f"{kind}-{sentences}-{mode}-{select}"
                    transcribe(code, corpus, out, arguments.model, mode, arguments.rates, select)
                    runs.setdefault((kind, mode, select), []).append((corpus, out))
    print(f"`{shlex.join(['.venv/bin/python', 'benchmarks/speakers.py', *sys.argv[1:]])}`\n")
    print(
        "| clips, mode, --face-select | clips | sentences attributed right (per clip) | off-screen chunks % per clip "
        "| segments with a speaker | WER (per clip) | s per clip (run.jsonl) | wall s |\n|---|---|---|---|---|---|---|---|"
    )
    for (kind, mode, select), pairs in runs.items():
        clips = [clip for corpus, out in pairs for clip in score_run(corpus, out)["clips"]]
        wall = sum(json.loads((out / "wall.json").read_text())["seconds"] for _, out in pairs)
        print(table_row(f"{kind}, {mode} {arguments.rates}, {select}", clips, wall), flush=True)
    oracles = {}  # mode -> (corpus, halves) per sentence count
    if arguments.oracle:
        print("\n| two-face clips, mode: each sentence from its speaker's face alone | clips | WER (per clip) |\n|---|---|---|")
        for mode in arguments.modes:
            pairs = []
            for sentences in counts:
                corpus = work / f"two-{sentences}"
                pairs.append((corpus, oracle_halves(code, corpus, work, arguments.model, mode, arguments.rates)))
            oracles[mode] = pairs
            transcripts = [oracle_transcripts(corpus, halves) for corpus, halves in pairs]
            records = [read_records(corpus) for corpus, _ in pairs]
            edits = [
                utterance.counts
                for texts, by_name in zip(transcripts, records, strict=True)
                for utterance in score_texts(
                    [texts[name]["text"] for name in sorted(by_name)], [by_name[name]["text"] for name in sorted(by_name)]
                )
                .systems[0]
                .utterances
            ]
            total = sum(edits[1:], edits[0])
            print(f"| {mode} {arguments.rates} | {len(edits)} | {total.rate:.1%} ({spread([c.rate for c in edits], 100)}) |", flush=True)
    print(
        "\nWER by the face that says each sentence in the two-face clips (its words: those nearest the sentence's span; "
        "the one-face clips say the same sentences with face 0's portrait):\n\n"
        "| clips, mode, --face-select | face 0's sentences | face 1's sentences |\n|---|---|---|"
    )

    def read_transcripts(corpus: Path, out: Path) -> dict[str, dict]:
        return {name: json.loads((out / f"{name}.json").read_text(encoding="utf-8")) for name in read_records(corpus)}

    rows = [
        (f"{kind}, {mode} {arguments.rates}, {select}", [(corpus, read_transcripts(corpus, out)) for corpus, out in pairs])
        for (kind, mode, select), pairs in runs.items()
        if kind != "off"
    ]
    rows += [
        (f"two, {mode} {arguments.rates}, each face alone (oracle)", [(c, oracle_transcripts(c, halves)) for c, halves in pairs])
        for mode, pairs in oracles.items()
    ]
    for label, read in rows:
        totals: dict[int, object] = {}
        for corpus, transcripts in read:
            speakers = read_records(work / corpus.name.replace("one-", "two-"))
            for face, edits in wer_by_face(transcripts, read_records(corpus), speakers).items():
                totals[face] = totals[face] + edits if face in totals else edits
        cells = [f"{totals[face].rate:.1%} ({totals[face].reference_length} words)" for face in (0, 1)]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    if arguments.stages:
        print("\nStage seconds per two-face clip, in-process (mean ± sd):\n")
        rows = {}
        for mode in arguments.modes:
            for select in arguments.selects:
                times: dict[str, list[float]] = {}
                for sentences in counts:
                    for stage, values in stage_times(
                        code, work / f"two-{sentences}", arguments.model, mode, arguments.rates, select
                    ).items():
                        times.setdefault(stage, []).extend(values)
                rows[f"{mode}, {select}"] = times
        found = {stage for times in rows.values() for stage in times}
        stages = [stage for stage in STAGES if stage in found] + sorted(found - set(STAGES))
        print("| mode, --face-select | " + " | ".join(stages) + " |\n" + "|---" * (len(stages) + 1) + "|")
        for label, times in rows.items():
            print(f"| {label} | " + " | ".join(spread(times.get(stage, []), digits=2) for stage in stages) + " |")


if __name__ == "__main__":
    main()
