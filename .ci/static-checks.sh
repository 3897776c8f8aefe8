#!/usr/bin/env bash
# Static checks of what ruff and mypy do not see: the action's metadata, the workflows (ours and the
# copy-paste examples), the Dockerfile and the shell scripts. Part of `make lint` (so of `make test`
# and `.ci/run`); runs on its own too:
#   bash .ci/static-checks.sh
# Installs its pinned tools (requirements-lint.txt, wheels from PyPI only) into their own venv,
# .venv-lint/ (LINT_VENV overrides), again only when requirements-lint.txt changes. Runs every check
# even after one fails, then exits 1 naming the failed ones.
#   check-jsonschema  action.yml (vendor.github-actions); workflows and examples (vendor.github-workflows)
#   actionlint        workflows and examples, with shellcheck on their `run:` scripts
#   zizmor            workflows, examples and action.yml: no finding above "low" (ignores: .github/zizmor.yml)
#                     offline, unless ZIZMOR_GITHUB_TOKEN is set (then its online audits run too)
#   hadolint          Dockerfile
#   (shell scripts)   .ci/run and every *.sh under .ci/ and .github/, with shellcheck
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

venv=${LINT_VENV:-.venv-lint}
stamp="$venv/.installed-$(sha256sum requirements-lint.txt | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  echo "[static-checks] installing the pinned linters into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" || exit 1
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
    -r requirements-lint.txt 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) || exit 1
  touch "$stamp"
fi
export PATH="$PWD/$venv/bin:$PATH"  # actionlint finds shellcheck here

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
examples=(examples/workflows/*.yml examples/workflows/*.yaml)
scripts=(.ci/run .ci/*.sh .github/scripts/*.sh)

failed=()
check() {  # check NAME COMMAND...: run it, remember the NAME when it fails
  local name=$1
  shift
  echo "== $name"
  if "$@"; then
    echo "-- $name: clean"
  else
    echo "-- $name: FAILED"
    failed+=("$name")
  fi
}

zizmor_network=(--offline)
if [ -n "${ZIZMOR_GITHUB_TOKEN:-}" ]; then
  zizmor_network=()
fi

check "check-jsonschema action.yml" check-jsonschema --builtin-schema vendor.github-actions action.yml
check "check-jsonschema workflows" check-jsonschema --builtin-schema vendor.github-workflows \
  "${workflows[@]}" "${examples[@]}"
check "actionlint" actionlint -color=false "${workflows[@]}" "${examples[@]}"
check "zizmor" zizmor --no-progress --color=never "${zizmor_network[@]}" --config .github/zizmor.yml \
  --min-severity medium "${workflows[@]}" "${examples[@]}" action.yml
check "hadolint" hadolint --no-color Dockerfile
check "shellcheck" shellcheck --severity=style "${scripts[@]}"

if [ ${#failed[@]} -gt 0 ]; then
  joined=$(printf ', %s' "${failed[@]}")
  echo "static checks failed: ${joined:2}"
  exit 1
fi
echo "static checks: all clean"
