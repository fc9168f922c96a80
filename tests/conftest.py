"""Fixtures shared by the test modules; what the tests import (REPO, run_cli, ...) is in tests/helpers.

``make test`` runs every test. The ones marked ``slow`` (over 20 s each on a 2-core machine) can be left out
while iterating: ``.venv/bin/python -m pytest -m "not slow"``. Session-scoped fixtures are made once per run
and shared by every module: a test that changes one works on a copy.
"""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The few-MB random-weight model of random_init (small_config, seed 0) in the native format, made once.
    Shared by every test that asks for it: copy it (shutil.copytree) before changing anything in it."""
    from omniavsr_cli.model.random_init import save_random_model, small_config

    return save_random_model(tmp_path_factory.mktemp("models") / "tiny", small_config())


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
