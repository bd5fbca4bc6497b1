#!/usr/bin/env bash
# The whole test suite in one command, with all of its own set-up:
#   creates .venv (Python >= 3.11), installs vectra-io with every extra and the test tools,
#   runs ruff (lint + format check) and mypy, then pytest. The real servers the tests use
#   (PostgreSQL + pgvector, Chroma, Milvus Lite, S3 through moto) are started on 127.0.0.1 by
#   the test fixtures and stopped when the tests end. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    for py in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        if [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$py"
            return
        fi
    done
    echo "vectra-io needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
    exit 2
}

if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -c requirements/test-constraints.txt -e ".[all,test]"

echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
exec .venv/bin/python -m pytest "$@"
