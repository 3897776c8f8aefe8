"""Pytest plugin: a stateful fake W&B server on 127.0.0.1 that the real ``wandb`` SDK talks to.

``WANDB_BASE_URL`` points the SDK (and its wandb-core service process) at it. It answers the named
GraphQL operations wandb 0.31.0 sends (read off its requests): ``Viewer``, ``GetDefaultEntity``,
``ServerFeaturesQuery`` (``wandb.Api()``); ``FetchOrgInfoFromEntity`` (registry paths);
``ArtifactMembershipByName`` (``api.artifact``); ``FetchArtifactManifest``,
``GetArtifactMembershipFileUrls`` (``download``); ``LinkArtifact``; ``AddAliases``/``DeleteAliases``,
``IsProjectReadOnly``, ``UpdateArtifact`` (``save`` after an alias edit); ``ArtifactCreatedBy``
(``artifact.logged_by()``), ``Run`` (``wandb.apis.public.Run``, lightweight then full for ``.config``),
``RunInputArtifacts`` (``run.used_artifacts()``); plus the GETs of the presigned manifest/file URLs it
hands out. Responses carry what the SDK's strict pydantic models
require (``__typename`` and all); a wrong key gets HTTP 401, an unknown artifact ``null`` as on W&B.

State: collections (an ``ArtifactSequence`` where a version was logged, an ``ArtifactPortfolio`` in a
registry) whose members point at logged versions; an alias names at most one member of a collection,
as on W&B; runs (``add_run``) with their config and used artifacts, and the run that logged a version
(``add_model(..., logged_by=run)``). Tests seed it with ``add_model``/``link``/``set_registry_alias`` and assert on
``alias_map``, ``members`` and ``link_operations``.

Faults on the wire (tests/fakes/faults.py), queued per GraphQL operation and served in order:
``fake.inject("LinkArtifact", server_error(502), reset(after=True))`` (5xx, 429 with ``Retry-After``,
resets before or after the operation took effect, slow replies); ``fake.before(op, hook)`` runs
``hook()`` once just before ``op`` is answered (another client acting in between).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote

import pytest

from tests.fakes.faults import Fault, FaultQueues

ORG_NAME = "acme"
ORG_ENTITY = "acme-org"  # registries live under the organization's entity
CREATED_AT = "2026-01-01T00:00:00Z"
_FEATURES = ["ARTIFACT_MEMBERSHIP_IN_LINK_ARTIFACT_RESPONSE", "PROJECT_ARTIFACT_COLLECTION_MEMBERSHIP"]


def _gql_id(kind: str, key: object) -> str:  # W&B ids are base64("Type:key")
    return base64.b64encode(f"{kind}:{key}".encode()).decode()


@dataclass
class _Version:  # one logged artifact version, in the sequence it was logged to
    id: str
    entity: str
    project: str
    name: str
    index: int
    files: dict[str, bytes]
    metadata: dict[str, Any]
    type: str = "model"
    logged_by: tuple[str, str, str] | None = None  # (entity, project, run id) of the run that logged it

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}:v{self.index}"

    def manifest(self) -> dict[str, Any]:
        contents = {
            p: {"digest": base64.b64encode(hashlib.md5(b).digest()).decode(), "size": len(b)}
            for p, b in self.files.items()
        }
        return {"version": 1, "storagePolicy": "wandb-storage-policy-v1",
                "storagePolicyConfig": {"storageLayout": "V2"}, "contents": contents}

    def digest(self) -> str:  # W&B's manifest digest (MANIFEST_MD5)
        h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
        for p, entry in sorted(self.manifest()["contents"].items()):
            h.update(f"{p}:{entry['digest']}\n".encode())
        return h.hexdigest()


@dataclass
class _Member:
    id: str
    version: _Version
    index: int  # version index inside this collection


@dataclass
class _Collection:
    entity: str
    project: str
    name: str
    typename: str  # "ArtifactSequence" (logged) or "ArtifactPortfolio" (links)
    members: list[_Member] = field(default_factory=list)
    aliases: dict[str, _Member] = field(default_factory=dict)

    def find(self, alias: str) -> _Member | None:
        if m := re.fullmatch(r"v(\d+)", alias):
            return next((x for x in self.members if x.index == int(m[1])), None)
        return self.aliases.get(alias)

    def member_of(self, version: _Version) -> _Member | None:
        return next((x for x in self.members if x.version is version), None)

    def set_alias(self, member: _Member, alias: str) -> None:
        self.aliases[alias] = member  # moves it off whichever member held it


@dataclass
class _Run:  # a W&B run: its config and the artifact versions it used (``run.use_artifact``)
    id: str  # the storage id W&B gives it
    entity: str
    project: str
    name: str  # the run id in paths ("3kq9x2ab")
    display_name: str
    config: dict[str, Any]
    used: list[_Version] = field(default_factory=list)


@dataclass(frozen=True)
class LinkOperation:
    source: str  # "entity/project/name:vN"
    target: str  # "entity/project/collection"
    aliases: tuple[str, ...]


class FakeWandb:
    def __init__(self, api_key: str = "fakekey" + "0" * 40, viewer: str = "mlgate-bot") -> None:
        self.api_key = api_key
        self.viewer = viewer
        self.base_url = ""
        self.collections: dict[tuple[str, str, str], _Collection] = {}
        self.projects: set[tuple[str, str]] = {(ORG_ENTITY, "wandb-registry-model")}
        self.link_operations: list[LinkOperation] = []
        self.runs: dict[tuple[str, str, str], _Run] = {}
        self.operations: list[str] = []  # GraphQL operation names, in order received
        self.last_query = ""  # the text of the GraphQL request being answered
        self._ids = 0
        self._lock = threading.Lock()
        self.faults = FaultQueues()
        self.hooks: dict[str, list[Any]] = {}
        self.protected_aliases: set[str] = set()
        """Aliases a registry (``wandb-registry-*``) protects: only a key with the registry Admin role sets them."""
        self.registry_role = "admin"
        """The key's role in the registries: "admin", "member" or "viewer"."""
        self.digest_answers: dict[str, str] = {}
        """source path -> the digest answered for that version instead of its manifest's (e.g. "")."""

    # -- faults on the wire ----------------------------------------------------------------------
    def inject(self, operation: str, *faults: Fault) -> None:
        """Queue ``faults`` (tests/fakes/faults.py) for the GraphQL ``operation`` (a regex, e.g.
        "LinkArtifact" or ".*"): each such request takes the next one, then it is answered normally."""
        self.faults.add("POST", operation, faults)

    def before(self, operation: str, hook: Any) -> None:
        """Run ``hook()`` once, under the state lock, just before the next ``operation`` is answered
        (another client acting between two requests of the code under test)."""
        self.hooks.setdefault(operation, []).append(hook)

    # -- seeding and assertions ------------------------------------------------------------------
    def add_model(self, entity: str, project: str, name: str, files: dict[str, bytes],
                  aliases: tuple[str, ...] | list[str] = (), metadata: dict[str, Any] | None = None,
                  *, type: str = "model", logged_by: str | None = None) -> str:
        """Log a version (of any artifact ``type``); ``logged_by`` is the ``entity/project/run-id`` of
        a run added with :meth:`add_run`."""
        seq = self._collection((entity, project, name), "ArtifactSequence")
        run = tuple(logged_by.split("/")) if logged_by else None
        assert run is None or (len(run) == 3 and run in self.runs), f"no run {logged_by}"
        version = _Version(self._new_id("Artifact"), entity, project, name, len(seq.members),
                           dict(files), dict(metadata or {}), type, run)  # type: ignore[arg-type]
        self._add_member(seq, version, ["latest", *aliases])
        return version.path

    def add_run(self, entity: str, project: str, run_id: str, *, display_name: str = "",
                config: dict[str, Any] | None = None, used: tuple[str, ...] | list[str] = ()) -> str:
        """A run with ``config`` (as ``wandb.config`` holds it) that used the artifact versions ``used``
        (``entity/project/name:vN``); returns its path ``entity/project/run-id``."""
        self.projects.add((entity, project))
        self.runs[(entity, project, run_id)] = _Run(
            self._new_id("Run"), entity, project, run_id, display_name or run_id, dict(config or {}),
            [self._version(p) for p in used])
        return f"{entity}/{project}/{run_id}"

    def delete_run(self, path: str) -> None:
        del self.runs[tuple(path.split("/"))]  # type: ignore[arg-type]

    def link(self, source: str, collection: str, aliases: tuple[str, ...] | list[str] = ()) -> str:
        version = self._version(source)
        coll = self._collection(self.collection_key(collection), "ArtifactPortfolio")
        member = coll.member_of(version) or self._add_member(coll, version, ["latest"])
        for alias in aliases:
            coll.set_alias(member, alias)
        return f"{collection}:v{member.index}"

    def set_registry_alias(self, collection: str, version: str, alias: str) -> None:
        coll = self.collections[self.collection_key(collection)]
        member = coll.find(version)
        assert member is not None, f"{collection} has no {version}"
        coll.set_alias(member, alias)

    def alias_map(self, collection: str) -> dict[str, str]:
        """alias -> source path of the version holding it in that collection."""
        coll = self.collections.get(self.collection_key(collection))
        return {a: m.version.path for a, m in coll.aliases.items()} if coll else {}

    def members(self, collection: str) -> list[str]:
        coll = self.collections.get(self.collection_key(collection))
        return [m.version.path for m in coll.members] if coll else []

    @staticmethod
    def collection_key(path: str) -> tuple[str, str, str]:
        *prefix, project, name = path.split("/")  # [org/]wandb-registry-model/mnist or entity/project/name
        return (ORG_ENTITY if project.startswith("wandb-registry-") else prefix[0], project, name)

    # -- state helpers ---------------------------------------------------------------------------
    def _new_id(self, kind: str) -> str:
        self._ids += 1
        return _gql_id(kind, self._ids)

    def _collection(self, key: tuple[str, str, str], typename: str) -> _Collection:
        self.projects.add(key[:2])
        return self.collections.setdefault(key, _Collection(*key, typename))

    def _add_member(self, coll: _Collection, version: _Version, aliases: list[str]) -> _Member:
        member = _Member(self._new_id("ArtifactCollectionMembership"), version, len(coll.members))
        coll.members.append(member)
        for alias in aliases:
            coll.set_alias(member, alias)
        return member

    def _version(self, path: str) -> _Version:
        entity, project, rest = path.split("/")
        name, _, alias = rest.partition(":")
        member = self.collections[(entity, project, name)].find(alias)
        assert member is not None, f"no {path}"
        return member.version

    def _version_by_id(self, artifact_id: str) -> _Version | None:
        return next((m.version for c in self.collections.values() for m in c.members
                     if m.version.id == artifact_id), None)

    # -- GraphQL responses -----------------------------------------------------------------------
    def _project(self, entity: str, project: str) -> dict[str, Any]:
        return {"id": _gql_id("Project", f"{entity}/{project}"),
                "internalId": f"{entity}/{project}", "name": project, "entity": {"name": entity}}

    def _coll_info(self, c: _Collection) -> dict[str, Any]:
        return {"__typename": c.typename, "name": c.name, "project": self._project(c.entity, c.project)}

    def _alias_list(self, c: _Collection, member: _Member) -> list[dict[str, Any]]:
        return [{"__typename": "ArtifactAlias", "id": _gql_id("ArtifactAlias", f"{c.name}:{a}"),
                 "alias": a} for a, m in c.aliases.items() if m is member]

    def _artifact(self, v: _Version) -> dict[str, Any]:
        manifest = v.manifest()["contents"]
        every_alias = [{**a, "artifactCollection": self._coll_info(c)}
                       for c in self.collections.values() if (m := c.member_of(v))
                       for a in self._alias_list(c, m)]
        return {
            "__typename": "Artifact", "id": v.id, "versionIndex": v.index,
            "artifactSequence": {"__typename": "ArtifactSequence", "name": v.name,
                                 "project": self._project(v.entity, v.project)},
            "artifactType": {"name": v.type}, "description": None, "metadata": json.dumps(v.metadata),
            "ttlDurationSeconds": -2, "ttlIsInherited": True, "tags": [], "historyStep": None,
            "state": "COMMITTED", "size": sum(e["size"] for e in manifest.values()),
            "digest": self.digest_answers.get(v.path, v.digest()), "digestAlgorithm": "MANIFEST_MD5",
            "commitHash": None,
            "fileCount": len(manifest), "createdAt": CREATED_AT, "updatedAt": None, "aliases": every_alias,
        }

    def _run(self, run: _Run, *, full: bool) -> dict[str, Any]:
        answer = {"projectId": 1, "id": run.id, "tags": [], "name": run.name, "displayName": run.display_name,
                  "sweepName": None, "state": "finished", "group": None, "jobType": "train", "commit": None,
                  "readOnly": False, "createdAt": CREATED_AT, "heartbeatAt": CREATED_AT, "description": None,
                  "notes": None, "historyLineCount": 0, "user": {"name": self.viewer, "username": self.viewer}}
        if full:  # W&B stores config as JSON text, each key wrapped as {"value": ..., "desc": ...}
            config = {k: {"value": val, "desc": None} for k, val in run.config.items()}
            config["_wandb"] = {"value": {"cli_version": "0.31.0"}, "desc": None}
            answer |= {"config": json.dumps(config), "systemMetrics": "{}", "summaryMetrics": "{}",
                       "historyKeys": None}
        return answer

    def _membership(self, c: _Collection, m: _Member) -> dict[str, Any]:
        return {"__typename": "ArtifactCollectionMembership", "id": m.id, "versionIndex": m.index,
                "createdAt": CREATED_AT, "aliases": self._alias_list(c, m),
                "artifactCollection": self._coll_info(c), "artifact": self._artifact(m.version)}

    def _check_protected(self, project: str, aliases: tuple[str, ...]) -> None:
        """W&B refuses the whole mutation when a non-admin key sets a protected alias of a registry.
        The real server's wording is not public; this answers a GraphQL error (HTTP 200, ``data`` null)
        saying "permission denied", the shape the W&B backend uses for refused mutations."""
        refused = sorted(a for a in aliases if a in self.protected_aliases)
        if project.startswith("wandb-registry-") and refused and self.registry_role != "admin":
            raise _GraphQLError(f"permission denied: only registry admins may set protected alias {refused[0]!r}")

    def graphql(self, op: str, v: dict[str, Any]) -> dict[str, Any]:
        if op in ("Viewer", "GetDefaultEntity"):
            return {"viewer": {"id": _gql_id("User", 1), "name": self.viewer, "username": self.viewer,
                               "email": f"{self.viewer}@example.com", "admin": False, "flags": "{}",
                               "entity": self.viewer, "deletedAt": None, "apiKeys": None,
                               "teams": {"edges": [{"node": {"name": ORG_ENTITY}}]}}}
        if op == "ServerFeaturesQuery":
            return {"serverInfo": {"features": [{"name": n, "isEnabled": True} for n in _FEATURES]}}
        if op == "FetchOrgInfoFromEntity":
            org = {"name": ORG_NAME, "orgEntity": {"name": ORG_ENTITY}}
            return {"entity": {"organization": org, "user": None}}
        if op == "IsProjectReadOnly":
            return {"project": {"readOnly": False} if (v["entity"], v["project"]) in self.projects else None}
        if op == "ArtifactMembershipByName":
            if (v["entity"], v["project"]) not in self.projects:
                return {"project": None}
            name, _, alias = v["name"].partition(":")
            c = self.collections.get((v["entity"], v["project"], name))
            m = c.find(alias or "latest") if c else None
            return {"project": {"artifactCollectionMembership": self._membership(c, m) if c and m else None}}
        if op == "ArtifactCreatedBy":  # artifact.logged_by()
            art = self._version_by_id(v["id"])
            run = self.runs.get(art.logged_by) if art and art.logged_by else None
            creator = ({"__typename": "Run", "id": run.id, "name": run.name,
                        "project": self._project(run.entity, run.project)} if run
                       else {"__typename": "User"} if art and art.logged_by is None else None)
            return {"artifact": {"createdBy": creator} if art else None}
        if op == "Run":  # wandb.apis.public.Run(...) (lightweight), then .config (full fragment)
            if (v["entity"], v["project"]) not in self.projects:
                return {"project": None}
            run = self.runs.get((v["entity"], v["project"], v["name"]))
            full = "fragment RunFragment on Run" in self.last_query  # .config asks for the heavy fields
            return {"project": {"run": self._run(run, full=full) if run else None}}
        if op == "RunInputArtifacts":  # run.used_artifacts()
            run = self.runs.get((v["entity"], v["project"], v["run"]))
            if run is None:
                return {"project": {"run": None}}
            first = v.get("perPage") or 50
            start = int(v["cursor"]) if v.get("cursor") else 0
            page = run.used[start:start + first]
            more = start + first < len(run.used)
            return {"project": {"run": {"artifacts": {
                "totalCount": len(run.used),
                "pageInfo": {"__typename": "PageInfo", "endCursor": str(start + len(page)), "hasNextPage": more},
                "edges": [{"node": self._artifact(u)} for u in page]}}}}
        if op == "FetchArtifactManifest":
            art = self._version_by_id(v["id"])
            url = f"{self.base_url}/storage/manifest/{quote(v['id'])}"
            return {"artifact": {"currentManifest": {"file": {"directUrl": url}}} if art else None}
        if op == "GetArtifactMembershipFileUrls":
            c = self.collections.get((v["entity"], v["project"], v["collection"]))
            m = c.find(v["alias"]) if c else None
            if not (c and m):
                return {"project": None}
            url = f"{self.base_url}/storage/files/{quote(m.version.id)}"
            nodes = [{"node": {"__typename": "File", "name": p, "directUrl": f"{url}/{quote(p)}"}}
                     for p in sorted(m.version.files)]
            files = {"pageInfo": {"__typename": "PageInfo", "endCursor": None, "hasNextPage": False},
                     "edges": nodes}
            return {"project": {"artifactCollection": {"__typename": c.typename,
                                                       "artifactMembership": {"files": files}}}}
        if op == "LinkArtifact":
            inp = v["input"]
            version = self._version_by_id(inp["artifactID"])
            assert version is not None
            target = f"{inp['entityName']}/{inp['projectName']}/{inp['artifactPortfolioName']}"
            aliases = tuple(a["alias"] for a in inp.get("aliases") or [])
            self._check_protected(inp["projectName"], aliases)
            self.link_operations.append(LinkOperation(version.path, target, aliases))
            self.link(version.path, target, aliases)
            c = self.collections[self.collection_key(target)]
            m = c.member_of(version)
            assert m is not None
            return {"result": {"versionIndex": m.index, "artifactMembership": self._membership(c, m)}}
        if op in ("AddAliases", "DeleteAliases"):
            for a in v["input"]["aliases"]:
                self._check_protected(a["projectName"], (a["alias"],))
            version = self._version_by_id(v["input"]["artifactID"])
            for a in v["input"]["aliases"]:
                c = self.collections[(a["entityName"], a["projectName"], a["artifactCollectionName"])]
                m = c.member_of(version) if version else None
                if m and op == "AddAliases":
                    c.set_alias(m, a["alias"])
                elif m and c.aliases.get(a["alias"]) is m:
                    del c.aliases[a["alias"]]
            return {"result": {"success": version is not None}}
        if op == "UpdateArtifact":
            version = self._version_by_id(v["input"]["artifactID"])
            assert version is not None
            return {"result": {"artifact": self._artifact(version)}}
        raise KeyError(op)


class _GraphQLError(Exception):
    """A GraphQL error answer for the operation being served (HTTP 200, ``errors``, ``data`` null)."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "application/json",
               headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up waiting (a slow reply)
            self.close_connection = True

    def do_POST(self) -> None:
        fake = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if self.path != "/graphql":
            return self._reply(404, b'{"errors":[{"message":"not found"}]}')
        expected = "Basic " + base64.b64encode(f"api:{fake.api_key}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._reply(401, b'{"errors":[{"message":"user is not logged in"}]}')
        match = re.search(r"\b(query|mutation)\s+(\w+)", body["query"])
        op = body.get("operationName") or (match[2] if match else "")
        fault = fake.faults.take("POST", op)
        if fault is not None and fault.kind == "status":
            fake.operations.append(op)
            return self._reply(fault.status, json.dumps({"errors": [{"message": fault.message}]}).encode(),
                               headers=fault.headers())
        if fault is not None and fault.kind == "reset" and not fault.after:
            return self._drop()
        with fake._lock:
            fake.operations.append(op)
            for hook in fake.hooks.pop(op, []):
                hook()
            try:
                fake.last_query = body["query"]
                data = fake.graphql(op, body.get("variables") or {})
            except KeyError as exc:
                msg = f"fake W&B does not implement {op!r} ({exc})"
                return self._reply(400, json.dumps({"errors": [{"message": msg}]}).encode())
            except _GraphQLError as exc:
                errors = [{"message": str(exc), "path": [op[0].lower() + op[1:]]}]
                return self._reply(200, json.dumps({"errors": errors, "data": None}).encode())
        if fault is not None and fault.kind == "reset":
            return self._drop()
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        self._reply(200, json.dumps({"data": data}).encode())

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self) -> None:  # presigned storage URLs: no API key, like GCS/S3 signed URLs
        fake = self.server.fake
        parts = [unquote(p) for p in self.path.split("/")[1:]]
        with fake._lock:
            version = fake._version_by_id(parts[2]) if len(parts) >= 3 and parts[0] == "storage" else None
            if version and parts[1] == "manifest":
                return self._reply(200, json.dumps(version.manifest()).encode())
            if version and parts[1] == "files" and "/".join(parts[3:]) in version.files:
                return self._reply(200, version.files["/".join(parts[3:])], "application/octet-stream")
        self._reply(404, b"not found", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeWandb) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


def _start(fake: FakeWandb, poll_interval: float = 0.5) -> tuple[_Server, threading.Thread]:
    """Serve ``fake`` on a free loopback port (its ``base_url`` set) from a daemon thread."""
    server = _Server(fake)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True)
    thread.start()
    return server, thread


def serve_fake_wandb() -> FakeWandb:
    """A fake W&B served until the process ends, for benchmarks and scripts outside pytest."""
    fake = FakeWandb()
    _start(fake)
    return fake


@pytest.fixture(scope="session")
def _wandb_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # wandb reads most settings once per process (its setup singleton), so these stay fixed
    root = tmp_path_factory.mktemp("wandb-home")
    return {name: str(root / name.lower()) for name in
            ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_DIR", "WANDB_ARTIFACT_DIR")}


@pytest.fixture
def fake_wandb(monkeypatch: pytest.MonkeyPatch, _wandb_dirs: dict[str, str]) -> Iterator[FakeWandb]:
    """A running fake W&B; the WANDB_* variables the adapter writes are restored afterwards."""
    fake = FakeWandb()
    server, thread = _start(fake, poll_interval=0.01)
    env = {**_wandb_dirs, "WANDB_BASE_URL": fake.base_url, "WANDB_API_KEY": fake.api_key,
           "WANDB_ERROR_REPORTING": "false", "WANDB_SILENT": "true",
           # fail fast when a test points the SDK at a closed port (defaults retry for minutes)
           "WANDB__GRAPHQL_RETRY_MAX": "1", "WANDB__GRAPHQL_RETRY_WAIT_MIN_SECONDS": "0.1",
           "WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS": "0.2", "WANDB_HTTP_TIMEOUT": "10"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()
