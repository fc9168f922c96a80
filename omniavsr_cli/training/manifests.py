"""Training manifests for the clips ``prep-lips`` prepared (``prep-lips --manifest``): the clips that have a
transcript beside their source, in the two layouts training.data reads.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import atomic_path
from ..writers import json_text

if TYPE_CHECKING:
    from ..inputs import InputFile
    from ..lips.prep import ClipRecord


def read_transcript(path: Path) -> str | None:
    """The transcript beside a video: LRS3's "Text:  ..." first line, or the whole file, lowercased."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    first = text.splitlines()[0] if text.strip() else ""
    if first.startswith("Text:"):
        text = first[len("Text:") :]
    words = " ".join(text.split()).lower()
    return words or None


def write_manifests(out_dir: Path, items: list[InputFile], records: list[ClipRecord]) -> tuple[int, int]:
    """Training manifests for the finished clips that have a transcript beside their source.

    ``manifest.csv`` is the Omni-AVSR 5-column label file (dataset, rel_path, frames, token ids, text) with
    csv quoting, ``dataset`` being OUT's folder name and ``rel_path`` relative to OUT (so ``--root-dir`` is
    OUT's parent); ``manifest.jsonl`` carries the same rows with names. Its columns cannot say that a clip has
    no audio (readers take the ``.wav`` beside the video), so a clip without audio is only in
    ``manifest.jsonl``, as ``"audio": null``. Returns the rows of ``manifest.jsonl`` and how many of them have no audio.
    """
    sources = {item.clip_id: item.path for item in items}
    dataset = out_dir.resolve().name
    rows = []
    for record in records:
        if record.status != "ok" or record.id not in sources:
            continue
        text = read_transcript(sources[record.id].with_suffix(".txt"))
        if text is not None:
            rows.append(
                {
                    "dataset": dataset,
                    "video": f"{record.id}.mp4",
                    "audio": f"{record.id}.wav" if record.audio else None,
                    "frames": record.frames,
                    "text": text,
                }
            )
    table = io.StringIO()
    csv.writer(table, lineterminator="\n").writerows(
        (row["dataset"], row["video"], row["frames"], "", row["text"]) for row in rows if row["audio"] is not None
    )
    lines = "".join(json_text(row) + "\n" for row in rows)
    for name, content in (("manifest.csv", table.getvalue()), ("manifest.jsonl", lines)):
        with atomic_path(out_dir / name) as part:
            # A csv path that is not UTF-8 is written as its bytes, so it names the file; jsonl escapes it (json_text).
            part.write_text(content, encoding="utf-8", errors="surrogateescape")
    return len(rows), sum(row["audio"] is None for row in rows)
