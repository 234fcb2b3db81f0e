#!/usr/bin/env bash
# Build the sandgate wheel into DIST (default: dist/) and print its path. It holds the generated gRPC
# messages, Envoy's bootstrap, the sandbox image's inputs and the static forwarder, which setup.py
# compiles (gcc with a static libc). Needs .venv with grpcio-tools: scripts/setup.sh makes it, and
# compose/Dockerfile makes its own. A user installs the result with `pip install DIST/sandgate-*.whl`.
set -euo pipefail
cd "$(dirname "$0")/.."
dist=$(realpath -m "${1:-dist}")
if [ ! -f control_plane/api/gen/.stamp ] || [ -n "$(find protos -name '*.proto' -newer control_plane/api/gen/.stamp)" ]; then
  scripts/gen-protos.sh
fi
.venv/bin/python -m pip install -q 'setuptools>=70.1' >&2
# setuptools stages the package in build/lib and would ship files removed from the tree since.
rm -rf build/lib* build/bdist.* ./*.egg-info
mkdir -p "$dist" && rm -f "$dist"/sandgate-*.whl
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$dist" . >&2
ls "$dist"/sandgate-*.whl
