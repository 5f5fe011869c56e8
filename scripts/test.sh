#!/usr/bin/env bash
# Install everything the tests need on a bare Debian machine (Python 3.11, pip, gcc given) and
# run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: headless Chromium for the web-viewer tests, PostgreSQL for the store tests.
need=""
for pkg in chromium chromium-driver postgresql; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
if [ -n "$need" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need
fi

# Python side: one virtual environment; llama-cpp-python compiles from source the first time.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
  .venv/bin/python -m pip install -q -e '.[test,bench]'

# Habits: lint, format and types are part of the test command.
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy src

exec .venv/bin/python -m pytest "$@"
