"""Cut the GitHub REST operations mlgate uses out of GitHub's OpenAPI description.

The full description (npm package ``@octokit/openapi``, ``generated/api.github.com.json``, 13 MB) is
too large to commit; the fake GitHub (``tests/fakes/github/``, see ``schema.py``) validates every
request body it receives against the small cut this script writes. The cut stays a valid OpenAPI 3.0
document: the operations keep their ``operationId``, parameters and request body with every ``$ref``
inlined; responses keep only their status codes and descriptions (the fake does not validate its
replies).

Usage::

    python -m tests.fakes.cut_github_openapi \\
        /tmp/npmx/node_modules/@octokit/openapi/generated/api.github.com.json \\
        tests/fakes/github_openapi.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# (method, path template) in GitHub's spelling; the operationId is checked against the source.
# One entry per route of the fake (tests/fakes/github/server.py ROUTES), so every body is checked.
OPERATIONS: dict[str, tuple[str, str]] = {
    "repos/get": ("get", "/repos/{owner}/{repo}"),
    "repos/get-content": ("get", "/repos/{owner}/{repo}/contents/{path}"),
    "repos/create-or-update-file-contents": ("put", "/repos/{owner}/{repo}/contents/{path}"),
    "issues/list-comments": ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    "issues/create-comment": ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    "issues/get-comment": ("get", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    "issues/update-comment": ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    "git/get-ref": ("get", "/repos/{owner}/{repo}/git/ref/{ref}"),
    "git/create-ref": ("post", "/repos/{owner}/{repo}/git/refs"),
    "git/update-ref": ("patch", "/repos/{owner}/{repo}/git/refs/{ref}"),
    "git/create-blob": ("post", "/repos/{owner}/{repo}/git/blobs"),
    "git/get-blob": ("get", "/repos/{owner}/{repo}/git/blobs/{file_sha}"),
    "git/create-tree": ("post", "/repos/{owner}/{repo}/git/trees"),
    "git/get-tree": ("get", "/repos/{owner}/{repo}/git/trees/{tree_sha}"),
    "git/create-commit": ("post", "/repos/{owner}/{repo}/git/commits"),
    "git/get-commit": ("get", "/repos/{owner}/{repo}/git/commits/{commit_sha}"),
    "pulls/list": ("get", "/repos/{owner}/{repo}/pulls"),
    "pulls/create": ("post", "/repos/{owner}/{repo}/pulls"),
    "pulls/get": ("get", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    "pulls/update": ("patch", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    # checks/create was cut from @octokit/openapi 23.0.2 (the cut of commit 53efee0); checks/update was
    # written by hand from GitHub's REST docs ("Update a check run"), the source not being at hand.
    "checks/create": ("post", "/repos/{owner}/{repo}/check-runs"),
    "checks/update": ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
}

_DROPPED_KEYS = {"examples", "example", "x-github"}


def _resolve(node: Any, spec: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline every local ``$ref``; fail on a recursive one (none occurs in these operations)."""
    if isinstance(node, list):
        return [_resolve(item, spec, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise ValueError(f"recursive $ref {ref} cannot be inlined")
        target: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return _resolve(target, spec, (*seen, ref))
    return {key: _resolve(value, spec, seen) for key, value in node.items() if key not in _DROPPED_KEYS}


def cut(spec: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for operation_id, (method, template) in OPERATIONS.items():
        operation = spec["paths"][template][method]
        if operation["operationId"] != operation_id:
            raise ValueError(f"{method.upper()} {template} is {operation['operationId']}, not {operation_id}")
        kept: dict[str, Any] = {
            "operationId": operation_id,
            "summary": operation.get("summary", ""),
            "parameters": _resolve(operation.get("parameters", []), spec),
            "responses": {
                code: {"description": _resolve(response, spec).get("description", "")}
                for code, response in operation["responses"].items()
            },
        }
        if "requestBody" in operation:
            kept["requestBody"] = _resolve(operation["requestBody"], spec)
        paths.setdefault(template, {})[method] = kept
    return {
        "openapi": spec["openapi"],
        "info": {
            "title": f"{spec['info']['title']} (cut for mlgate's fake GitHub)",
            "version": spec["info"]["version"],
        },
        "paths": paths,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="api.github.com.json from @octokit/openapi")
    parser.add_argument(
        "output", type=Path, nargs="?", default=Path(__file__).with_name("github_openapi.json")
    )
    args = parser.parse_args()
    result = cut(json.loads(args.source.read_text(encoding="utf-8")))
    args.output.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(OPERATIONS)} operations to {args.output}")


if __name__ == "__main__":
    main()
