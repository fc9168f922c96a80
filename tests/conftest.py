"""Fixtures shared by the test modules; what the tests import (REPO, run_cli, ...) is in tests/helpers.

``make test`` runs every test, one worker per core (pytest-xdist's ``-n auto``). The ones marked ``slow`` (over
20 s each on a 2-core machine) can be left out while iterating: ``.venv/bin/python -m pytest -m "not slow"``.
Session-scoped fixtures are made once per worker and shared by every module it runs: a test that changes one
works on a copy.
"""

import os
from pathlib import Path

import pytest


def pytest_configure(config):
    """Under pytest-xdist (`make test` runs one worker per core), each worker's torch, and every process it
    starts, gets its share of the cores: two workers with a full thread pool each fight over every core."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The few-MB random-weight model of random_init (small_config, seed 0) in the native format, made once.
    Shared by every test that asks for it: copy it (shutil.copytree) before changing anything in it."""
    from omniavsr_cli.model.random_init import save_random_model, small_config

    return save_random_model(tmp_path_factory.mktemp("models") / "tiny", small_config())


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray of 2 CPUs (as this machine has), started once per test worker for every --ray test.
    Skipped where the ray extra is not installed."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


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
