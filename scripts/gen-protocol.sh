#!/usr/bin/env bash
# Regenerate the gRPC stubs from buildman.proto (they are committed; run after editing the proto).
set -euo pipefail
cd "$(dirname "$0")/../src"
"${PYTHON:-python}" -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. slipway/protocol/buildman.proto
