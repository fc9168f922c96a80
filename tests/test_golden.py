"""`omniavsr transcribe` byte for byte: every output file, stdout, stderr and exit code of a few runs of the
shipped demo model on the bundled clips, against files recorded in tests/data/golden/ before the library was
reshaped. Paths of this checkout and of the output folder are written as <REPO> and <OUT>; what changes from
run to run (run.jsonl's seconds) is left out.

Record them again (only for an intended change of output): OMNIAVSR_UPDATE_GOLDEN=1 pytest tests/test_golden.py
"""

import os
import shutil
from pathlib import Path

import pytest
from helpers import REPO, run_cli

GOLDEN = REPO / "tests" / "data" / "golden"
EXAMPLE = "examples/demo/grid-example.mp4"
CLIPS = [f"tests/data/demo/s4-00000{k}.mp4" for k in range(3)]
CASES = {
    "files": ["transcribe", EXAMPLE, CLIPS[0], CLIPS[1], "--model", "demo", "-o", "{out}"],
    "asr-jsonl-stdout": ["transcribe", CLIPS[2], "--model", "demo", "--mode", "asr", "--rates", "16,5", "-f", "jsonl", "-o", "-"],
    "vsr-srt-stdout": ["transcribe", EXAMPLE, "--model", "demo", "--mode", "vsr", "--rates", "4,5", "-f", "srt", "-o", "-"],
    "missing-input": ["transcribe", "tests/data/demo/absent.mp4", CLIPS[0], "--model", "demo", "-o", "{out}", "-f", "txt"],
    "bad-rates": ["transcribe", EXAMPLE, "--model", "demo", "--rates", "3,3"],
}


def _normalised(text: str, out: Path) -> str:
    return text.replace(str(out), "<OUT>").replace(str(REPO), "<REPO>")


@pytest.mark.parametrize("case", sorted(CASES))
def test_transcribe_output_is_byte_identical_to_the_recording(case, tmp_path):
    out = tmp_path / "out"
    result = run_cli(*[argument.format(out=out) for argument in CASES[case]])
    produced = {
        "exit_code.txt": f"{result.returncode}\n",
        "stdout.txt": _normalised(result.stdout.decode(), out),
        "stderr.txt": _normalised(result.stderr.decode(), out),
    }
    if out.is_dir():
        for path in sorted(out.iterdir()):
            if path.name != "run.jsonl":
                produced[f"out/{path.name}"] = _normalised(path.read_text(encoding="utf-8"), out)
    folder = GOLDEN / case
    if os.environ.get("OMNIAVSR_UPDATE_GOLDEN"):
        shutil.rmtree(folder, ignore_errors=True)
        for name, text in produced.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
    recorded = {str(path.relative_to(folder)): path.read_text(encoding="utf-8") for path in sorted(folder.rglob("*")) if path.is_file()}
    assert sorted(produced) == sorted(recorded)
    for name, text in recorded.items():
        assert produced[name] == text, name
