#!/usr/bin/env bash
# Generate the Python messages for protos/ into control_plane/api/gen (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
out=control_plane/api/gen
rm -rf "$out" && mkdir -p "$out"
.venv/bin/python -m grpc_tools.protoc -Iprotos --python_out="$out" --pyi_out="$out" protos/sandgate/v1/sessions.proto
touch "$out/__init__.py" "$out/sandgate/__init__.py" "$out/sandgate/v1/__init__.py"
