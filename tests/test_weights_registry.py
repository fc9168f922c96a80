"""``omniavsr weights``: registry, download from a loopback HTTP server (resume, checksums), verify, guidance."""

import hashlib
import http.server
import json
import threading

import pytest
from helpers import run_cli

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
