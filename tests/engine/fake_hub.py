"""A stand-in for the Hugging Face hub on 127.0.0.1: just the endpoints huggingface_hub's pull calls.

Read from huggingface_hub 2.4's source (``HfApi.repo_info``, ``HfApi.list_repo_tree``,
``get_hf_file_metadata``, ``http_get``):

- ``GET /api/models/{repo}/revision/{rev}`` -> ``{"id", "sha", "siblings"}``
- ``GET /api/models/{repo}/tree/{rev}?recursive=...`` -> ``[{"type": "file", "path", "size", "oid", "lfs"}]``
  (no ``Link`` header: one page)
- ``HEAD /{repo}/resolve/{rev}/{file}`` -> headers ``X-Repo-Commit``, ``ETag`` (the blob's name in the
  cache), ``Content-Length``, ``Accept-Ranges``; no ``X-Xet-Hash``, so plain HTTP is used
- ``GET`` of the same, honouring ``Range: bytes=N-`` with ``206`` and ``Content-Range``

Errors carry the hub's ``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``, ``GatedRepo``), which
huggingface_hub turns into its typed exceptions.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

PIECE = 1 << 20


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    gated: bool = False

    @classmethod
    def from_folder(cls, folder: Path, **kwargs: object) -> FakeRepo:
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        return cls(files, **kwargs)  # type: ignore[arg-type]

    def tree(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for name, data in self.files.items():
            entry: dict[str, object] = {
                "type": "file",
                "path": name,
                "size": len(data),
                "oid": hashlib.sha1(data).hexdigest(),
            }
            if name.endswith(".safetensors"):
                entry["lfs"] = {"oid": sha256(data), "size": len(data), "pointerSize": 134}
            out.append(entry)
        return out


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo]
    url: str = ""
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, Range header
    drop_once: dict[str, int] = field(
        default_factory=dict
    )  # file -> close the connection after N bytes, once
    fail: dict[str, int] = field(default_factory=dict)  # file -> HTTP status every GET of it answers
    sent: dict[str, int] = field(default_factory=dict)  # file -> body bytes written, over all GETs
    hold: dict[str, threading.Event] = field(default_factory=dict)  # file -> its body waits for the event

    def gets(self, name: str) -> list[str]:
        """The Range header (or "") of each GET of file ``name``."""
        return [rng for method, path, rng in self.requests if method == "GET" and path.endswith("/" + name)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def serve(hub: FakeHub) -> Iterator[FakeHub]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def do_GET(self) -> None:
            self._answer(head=False)

        def _answer(self, head: bool) -> None:
            path = unquote(urlparse(self.path).path)
            hub.requests.append(("HEAD" if head else "GET", path, self.headers.get("Range", "")))
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 6:
                repo_id, kind, rev = f"{parts[2]}/{parts[3]}", parts[4], parts[5]
                repo = self._repo(repo_id, rev)
                if repo is None:
                    return
                if kind == "revision":
                    siblings = [{"rfilename": n} for n in repo.files]
                    body = {"id": repo_id, "sha": repo.commit, "siblings": siblings, "gated": repo.gated}
                    return self._json(body)
                if kind == "tree":
                    return self._json(repo.tree())
            if len(parts) >= 5 and parts[2] == "resolve":
                repo_id, rev, name = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
                repo = self._repo(repo_id, rev)
                if repo is None:
                    return
                if repo.gated:
                    return self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted.")
                if name not in repo.files:
                    return self._error(404, "EntryNotFound", f"{name} does not exist", commit=repo.commit)
                return self._file(repo, name, head)
            return self._error(404, "", "not found")

        def _repo(self, repo_id: str, rev: str) -> FakeRepo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:  # the hub answers 401 for a missing repo, so as not to reveal private ones
                self._error(401, "RepoNotFound", "Repository not found")
                return None
            if rev not in ("main", repo.commit):
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return None
            return repo

        def _file(self, repo: FakeRepo, name: str, head: bool) -> None:
            data = repo.files[name]
            if not head and name in hub.fail:
                return self._error(hub.fail[name], "", "server error")
            start = 0
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes=") and not head:
                start = int(rng[len("bytes=") :].split("-")[0])
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("ETag", f'"{sha256(data)}"')
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if head:
                return
            body = data[start:]
            gate = hub.hold.get(name)
            if gate is not None:  # a transfer caught half-way, for as long as a test needs
                gate.wait(30)
            cut = hub.drop_once.pop(name, None)
            if cut is not None:  # announce the whole body, send part of it, hang up
                body = body[:cut]
            try:
                for i in range(0, len(body), PIECE):
                    self.wfile.write(body[i : i + PIECE])
                    hub.sent[name] = hub.sent.get(name, 0) + len(body[i : i + PIECE])
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

        def _json(self, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: str, message: str, commit: str = "") -> None:
            data = json.dumps({"error": message}).encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            if commit:
                self.send_header("X-Repo-Commit", commit)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
