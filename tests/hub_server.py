"""A small local stand-in for the Hugging Face Hub HTTP API: what huggingface_hub 2.4 calls for GAN Studio.

Endpoints: repo creation, README metadata validation, pre-upload (every file 'regular', so commits carry files
inline as base64), commit (NDJSON), repo info (models, datasets, spaces; any revision), tree listing, file
resolve (GET/HEAD with the commit and ETag headers), Space variables and whoami. Every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

TOKEN = "hf_TestTokenThatMustNeverBeWritten0123456789"  # what the tests use as HF_TOKEN
KINDS = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_COUNTER = itertools.count(1)


def git_oid(content: bytes) -> str:
    """The git blob id the Hub reports as a small file's ETag and tree oid."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Repo:
    """A repo: branches pointing at commits, each commit a full file snapshot."""

    kind: str
    repo_id: str
    private: bool = False
    payload: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def commit(self, added: dict[str, bytes], branch: str = "main", deleted: tuple[str, ...] = ()) -> str:
        files = dict(self.commits.get(self.branches.get(branch, ""), {}))
        for path in deleted:
            files = {p: c for p, c in files.items() if p != path and not p.startswith(path.rstrip("/") + "/")}
        files.update(added)
        sha = hashlib.sha1(f"{self.repo_id}:{next(_COUNTER)}".encode()).hexdigest()
        self.commits[sha] = files
        self.branches[branch] = sha
        return sha

    def resolve(self, revision: str) -> str | None:
        revision = unquote(revision)
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


class HubServer:
    """Start with ``HubServer(token).start()``; ``url`` is its endpoint; ``requests`` what it received."""

    def __init__(self, token: str | None = None, user: str = "tester") -> None:
        self.token, self.user = token, user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "HubServer":
        hub = self

        class Handler(_Handler):
            server_state = hub

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def add_repo(self, kind: str, repo_id: str, files: dict[str, bytes], branch: str = "main",
                 private: bool = False) -> Repo:
        """Seed a repo (or another branch of it) with files, as if someone had pushed them."""
        repo = self.repos.setdefault((kind, repo_id), Repo(kind, repo_id, private))
        repo.commit(files, branch)
        return repo

    def files(self, kind: str, repo_id: str, branch: str = "main") -> dict[str, bytes]:
        repo = self.repos[(kind, repo_id)]
        return repo.commits[repo.branches[branch]]

    def find(self, method: str, path_part: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_part in r.path]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: HubServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    # ------------------------------------------------------------ plumbing

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any = b"", headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        content_type = "application/octet-stream" if isinstance(body, bytes) else "application/json"
        for key, value in {"Content-Type": content_type, "Content-Length": str(len(data)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None) -> None:
        extra = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {}), **(headers or {})}
        self._send(status, {"error": message}, extra)

    def _authorised(self) -> bool:
        hub = self.server_state
        return hub.token is None or self.headers.get("Authorization") == f"Bearer {hub.token}"

    def _require_auth(self) -> bool:
        if self._authorised():
            return True
        self._error(401, None, "Invalid credentials in Authorization header")
        return False

    def _repo(self, kind: str, repo_id: str) -> Repo | None:
        repo = self.server_state.repos.get((kind, repo_id))
        if repo is None or (repo.private and not (self.headers.get("Authorization") and self._authorised())):
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        return repo

    def _commit(self, repo: Repo, revision: str) -> str | None:
        sha = repo.resolve(revision)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(revision)}")
        return sha

    # ------------------------------------------------------------ dispatch

    def _handle(self) -> None:
        body = self._body() if self.command in ("POST", "PUT", "DELETE") else b""
        hub = self.server_state
        parts = urlsplit(self.path)
        with hub.lock:
            headers = {key.lower(): value for key, value in self.headers.items()}
            hub.requests.append(Recorded(self.command, parts.path, headers, body))
        segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
        try:
            self._route(segments, body, parse_qs(parts.query))
        except (KeyError, ValueError, TypeError) as exc:
            self._error(400, None, f"bad request: {exc}")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle

    def _route(self, seg: list[str], body: bytes, query: dict[str, list[str]]) -> None:
        if not seg:
            return self._send(200, {"ok": True})
        if seg[0] != "api":
            return self._resolve(seg)
        if seg[1:] == ["whoami-v2"]:
            return self._whoami()
        if seg[1:] == ["validate-yaml"]:
            return self._validate_yaml(json.loads(body))
        if seg[1:] == ["repos", "create"] and self.command == "POST":
            return self._create(json.loads(body))
        if len(seg) >= 4 and seg[1] in KINDS:
            kind, repo_id, rest = KINDS[seg[1]], f"{seg[2]}/{seg[3]}", seg[4:]
            return self._repo_api(kind, repo_id, rest, body)
        return self._error(404, None, f"no route {self.path}")

    def _whoami(self) -> None:
        if not self.headers.get("Authorization") or not self._authorised():
            return self._error(401, None, "Invalid credentials in Authorization header")
        self._send(200, {"type": "user", "name": self.server_state.user,
                         "auth": {"accessToken": {"displayName": "test", "role": "write"}}})

    def _validate_yaml(self, payload: dict[str, Any]) -> None:
        content: str = payload["content"]
        if content.startswith("---"):
            try:
                yaml.safe_load(content.split("---", 2)[1])
            except yaml.YAMLError as exc:
                return self._send(400, {"errors": [{"message": str(exc)}]}, {"X-Error-Code": "BadRequest"})
        self._send(200, {"errors": [], "warnings": []})

    def _create(self, payload: dict[str, Any]) -> None:
        if not self._require_auth():
            return None
        hub = self.server_state
        kind = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or hub.user}/{payload['name']}"
        url = f"{hub.url}/{URL_PREFIX[kind]}{repo_id}"
        with hub.lock:
            if (kind, repo_id) in hub.repos:
                return self._send(409, {"error": "You already created this repo", "url": url},
                                  {"X-Error-Message": "You already created this repo"})
            repo = Repo(kind, repo_id, payload.get("visibility") == "private", payload,
                        {v["key"]: v["value"] for v in payload.get("variables") or []})
            repo.commit({".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"})
            hub.repos[(kind, repo_id)] = repo
        self._send(200, {"url": url, "name": repo_id})

    def _repo_api(self, kind: str, repo_id: str, rest: list[str], body: bytes) -> None:
        if rest and rest[0] in ("preupload", "commit", "variables") and not self._require_auth():
            return None
        repo = self._repo(kind, repo_id)
        if repo is None:
            return None
        if not rest or rest[0] == "revision":
            sha = self._commit(repo, rest[1] if rest else "main")
            return self._info(repo, sha) if sha else None
        if rest[0] == "tree":
            sha = self._commit(repo, rest[1])
            prefix = "/".join(unquote(s) for s in rest[2:])
            if sha:
                files = repo.commits[sha]
                self._send(200, [{"type": "file", "path": p, "size": len(c), "oid": git_oid(c)}
                                 for p, c in sorted(files.items()) if p.startswith(prefix)])
            return None
        if rest[0] == "preupload":
            sha = self._commit(repo, rest[1])
            files = repo.commits[sha] if sha else {}
            return self._send(200, {"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                 "oid": git_oid(files[f["path"]]) if f["path"] in files else None}
                for f in json.loads(body)["files"]]})
        if rest[0] == "commit":
            return self._apply_commit(repo, unquote(rest[1]), body)
        if rest[0] == "variables" and kind == "space":
            if self.command == "POST":
                payload = json.loads(body)
                repo.variables[payload["key"]] = payload["value"]
            return self._send(200, {k: {"value": v} for k, v in repo.variables.items()})
        return self._error(404, None, f"no route {self.path}")

    def _info(self, repo: Repo, sha: str) -> None:
        info = {"id": repo.repo_id, "sha": sha, "private": repo.private,
                "siblings": [{"rfilename": p} for p in sorted(repo.commits[sha])]}
        if repo.kind == "space":
            info["sdk"] = repo.payload.get("sdk")
        self._send(200, info)

    def _apply_commit(self, repo: Repo, branch: str, body: bytes) -> None:
        added: dict[str, bytes] = {}
        deleted: list[str] = []
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                added[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] in ("deletedFile", "deletedFolder"):
                deleted.append(item["value"]["path"])
            elif item["key"] != "header":
                return self._error(422, None, f"this test server accepts inline files only, not {item['key']}")
        with self.server_state.lock:
            sha = repo.commit(added, branch, tuple(deleted))
        self._send(200, {"commitUrl": f"{self.server_state.url}/{URL_PREFIX[repo.kind]}{repo.repo_id}/commit/{sha}",
                         "commitOid": sha, "pullRequestUrl": None})

    def _resolve(self, seg: list[str]) -> None:
        kind = {"datasets": "dataset", "spaces": "space"}.get(seg[0], "model")
        if kind != "model":
            seg = seg[1:]
        if len(seg) < 5 or seg[2] != "resolve":
            return self._error(404, None, f"no route {self.path}")
        repo = self._repo(kind, f"{seg[0]}/{seg[1]}")
        if repo is None:
            return None
        sha = self._commit(repo, seg[3])
        if sha is None:
            return None
        path = "/".join(unquote(s) for s in seg[4:])
        content = repo.commits[sha].get(path)
        if content is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist", {"X-Repo-Commit": sha})
        self._send(200, content, {"X-Repo-Commit": sha, "ETag": f'"{git_oid(content)}"'})
