"""``omniavsr weights``: registry, download from a loopback HTTP server (resume, checksums), verify, guidance."""

import hashlib
import http.server
import json
import shutil
import threading

import pytest
from helpers import REPO, run_cli

from omniavsr_cli.weights import sha256_of, verify

PAYLOAD = bytes(range(256)) * 4000  # ~1 MB "model.safetensors"


class RangeHandler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    requests: list = []

    def do_GET(self):  # noqa: N802
        body = self.files.get(self.path)
        self.requests.append((self.path, self.headers.get("Range")))
        if body is None:
            self.send_error(404)
            return
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.requests.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def registry_file(tmp_path, base, sha=None):
    RangeHandler.files = {"/tiny/model.safetensors": PAYLOAD, "/tiny/config.json": b"{}"}
    models = {
        "tiny": {
            "description": "test model",
            "files": [
                {"name": "config.json", "url": f"{base}/tiny/config.json", "sha256": hashlib.sha256(b"{}").hexdigest()},
                {
                    "name": "model.safetensors",
                    "url": f"{base}/tiny/model.safetensors",
                    "sha256": sha or hashlib.sha256(PAYLOAD).hexdigest(),
                },
            ],
        },
        "manual-only": {
            "description": "released by hand",
            "files": [],
            "manual": "fetch X.pth, then run: omniavsr weights import-official X.pth -o WEIGHTS/manual-only",
        },
    }
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"models": models}))
    return {"OMNIAVSR_REGISTRY": str(path), "OMNIAVSR_WEIGHTS": str(tmp_path / "w")}


def test_download_resumes_a_partial_file_and_verify_catches_damage(server, tmp_path):
    env = registry_file(tmp_path, server)
    partial = tmp_path / "w" / "tiny" / "model.safetensors.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(PAYLOAD[:300_000])  # an interrupted earlier download
    result = run_cli("weights", "download", "tiny", env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "w" / "tiny" / "model.safetensors").read_bytes() == PAYLOAD
    assert ("/tiny/model.safetensors", "bytes=300000-") in RangeHandler.requests
    assert run_cli("weights", "verify", "tiny", env=env).returncode == 0
    listing = run_cli("weights", "list", env=env).stdout.decode()
    assert "tiny" in listing and "installed" in listing and "manual import" in listing
    with (tmp_path / "w" / "tiny" / "model.safetensors").open("r+b") as handle:
        handle.write(b"X")
    result = run_cli("weights", "verify", "tiny", env=env)
    assert result.returncode == 5 and "checksum mismatch" in result.stdout.decode()


def test_a_bad_checksum_is_refused_and_the_file_removed(server, tmp_path):
    env = registry_file(tmp_path, server, sha="0" * 64)
    result = run_cli("weights", "download", "tiny", env=env)
    assert result.returncode == 5 and "checksum mismatch" in result.stderr.decode()
    assert not (tmp_path / "w" / "tiny" / "model.safetensors").exists()
    assert not (tmp_path / "w" / "tiny" / "model.safetensors.part").exists()


def test_offline_and_manual_models_fail_fast_with_guidance(tmp_path):
    env = registry_file(tmp_path, "http://127.0.0.1:9")  # nothing listens on the discard port
    result = run_cli("weights", "download", "tiny", env=env)
    assert result.returncode == 5 and "cannot download" in result.stderr.decode() and "rerun to resume" in result.stderr.decode()
    result = run_cli("weights", "download", "manual-only", env=env)
    assert result.returncode == 5 and "import-official X.pth" in result.stderr.decode()
    assert run_cli("weights", "download", "nope", env=env).returncode == 2


def test_the_packaged_registry_names_the_released_models_and_how_to_get_them():
    from omniavsr_cli.registry import registry

    models = registry()
    assert {"omni-avsr-st", "omni-avsr-t", "omni-avsr-s"} <= set(models)
    assert all("import-official" in models[name].manual for name in ("omni-avsr-st", "omni-avsr-t", "omni-avsr-s"))


def test_an_unreadable_registry_is_one_error_line_and_nothing_on_stdout(tmp_path):
    (tmp_path / "bad.json").write_text("{bad")
    (tmp_path / "list.json").write_text("[1]")
    for name in ("bad.json", "missing.json", "list.json"):
        result = run_cli("weights", "list", env={"OMNIAVSR_REGISTRY": str(tmp_path / name)})
        stderr = result.stderr.decode()
        assert result.returncode == 2 and result.stdout == b"", stderr
        assert stderr.count("\n") == 1 and f"OMNIAVSR_REGISTRY={tmp_path / name}: not a usable model registry" in stderr


@pytest.fixture
def demo(tmp_path):
    """A copy of the demo model (never the shipped one: these tests damage it)."""
    return shutil.copytree(REPO / "weights" / "demo", tmp_path / "demo")


def test_verify_reports_a_checksums_file_that_is_damaged_or_lists_nothing(demo):
    sums = demo / "checksums.json"
    for damaged in ("not json", "[1, 2]", '{"model.safetensors": 3}'):
        sums.write_text(damaged)
        result = run_cli("weights", "verify", str(demo))
        assert result.returncode == 5 and "re-import or re-download" in result.stdout.decode(), result.stdout.decode()
    sums.write_text("{}")
    with (demo / "model.safetensors").open("r+b") as handle:
        handle.seek(-1, 2)
        handle.write(b"X")
    result = run_cli("weights", "verify", str(demo))
    assert result.returncode == 5 and f"{demo / 'model.safetensors'}: not listed in checksums.json" in result.stdout.decode()


def test_verify_reads_no_file_outside_the_model_folder(demo, tmp_path):
    outside = tmp_path / "secret"
    outside.write_text("not the model's")
    sums = json.loads((demo / "checksums.json").read_text())
    sums |= {"../secret": sha256_of(outside), str(outside): sha256_of(outside)}
    (demo / "checksums.json").write_text(json.dumps(sums))
    problems = verify(demo)
    assert len(problems) == 2 and all("not a file name of this folder" in problem for problem in problems)


def test_merge_never_touches_a_folder_of_the_user_and_keeps_what_the_model_says_of_itself(demo, tmp_path):
    (tmp_path / "victim.part").mkdir()
    (tmp_path / "victim.part" / "notes.txt").write_text("mine")
    result = run_cli("weights", "merge", str(demo), "-o", str(tmp_path / "victim"))
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "victim.part" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "victim", "victim.part"]  # no staging folder left
    merged = tmp_path / "victim"
    for name in ("domain.txt", "MODEL_CARD.md"):
        assert (merged / name).read_bytes() == (demo / name).read_bytes()
    assert set(json.loads((merged / "checksums.json").read_text())) == {p.name for p in merged.iterdir()} - {"checksums.json"}
    assert verify(merged) == []


def test_merge_into_a_place_that_cannot_be_written_is_one_line_naming_it(demo, tmp_path):
    (tmp_path / "file").write_text("")
    result = run_cli("weights", "merge", str(demo), "-o", str(tmp_path / "file" / "model"))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and stderr.count("\n") == 1, stderr
    assert f"{tmp_path / 'file' / 'model'}: cannot write the model there" in stderr and "--output" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "file"]
