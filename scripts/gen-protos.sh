#!/usr/bin/env bash
# Generate the Python messages for protos/ into control_plane/api/gen (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
out=control_plane/api/gen
rm -rf "$out" && mkdir -p "$out"
mapfile -t protos < <(cd protos && find . -name '*.proto' | sort)
(cd protos && ../.venv/bin/python -m grpc_tools.protoc -I. --python_out="../$out" --pyi_out="../$out" "${protos[@]}")
find "$out" -type d -exec touch {}/__init__.py \;
touch "$out/.stamp"
