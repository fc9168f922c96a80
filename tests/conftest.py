import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, input: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script as a user would (real process, real exit code, real streams)."""
    import os
    import shutil

    executable = shutil.which("omniavsr", path=str(Path(sys.executable).parent)) or "omniavsr"
    return subprocess.run(
        [executable, *args],
        input=input,
        capture_output=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


@pytest.fixture
def write(tmp_path):
    """write("name", "text" or b"bytes") -> path in a fresh temporary folder."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write
