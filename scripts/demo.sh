#!/usr/bin/env bash
# The slipway demo, start to finish on this machine, without internet:
#   1. a local docker-registry on a free 127.0.0.1 port (storage in a temp dir)
#   2. the local base image localhost/slipway-base:latest (scripts/make-base-image.sh, the
#      one builder of the base images: built only when missing or changed, and a manifest
#      list naming it made again when it changes, so the host's image store stays usable)
#   3. `slipway serve` with a small config (SQLite, in-memory orchestrator, local worker)
#   4. `slipway build examples/hello -t REG/demo/hello:latest -t REG/demo/hello:v1`
#   5. `skopeo inspect` of what was pushed
# Everything it started is stopped on exit. Exits non-zero on failure, with the logs shown.
#
# env: SLIPWAY (default .venv/bin/slipway, else slipway on PATH), KEEP_DEMO_DIR=1 to keep
#      the temp dir (config, data, logs), STORAGE_DRIVER (passed to podman, e.g. vfs).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

slipway=${SLIPWAY:-}
if [ -z "$slipway" ]; then
    if [ -x "$root/.venv/bin/slipway" ]; then slipway=$root/.venv/bin/slipway
    else slipway=$(command -v slipway || true); fi
fi
[ -n "$slipway" ] || die "slipway is not installed: run 'make install' (or set SLIPWAY=/path/to/slipway)"
python=python3
[ -x "$root/.venv/bin/python" ] && python=$root/.venv/bin/python
for tool in docker-registry podman skopeo; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install $tool)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/slipway-demo.XXXXXX")
registry_pid=""
server_pid=""

stop() {  # stop PID gracefully, then for good
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop "$server_pid"
    stop "$registry_pid"
    if [ "$status" -ne 0 ]; then
        for log in "$work/serve.log" "$work/registry.log"; do
            [ -s "$log" ] || continue
            printf '\n----- %s (last 80 lines) -----\n' "$(basename "$log")" >&2
            tail -n 80 "$log" >&2
        done
        printf '\ndemo: FAILED (exit %s)\n' "$status" >&2
    fi
    if [ "${KEEP_DEMO_DIR:-0}" = 1 ]; then echo "demo: kept $work"; else rm -rf "$work"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL PID SECONDS: until URL answers 200 (PID must stay alive)
wait_http() {
    "$python" - "$@" <<'PY'
import os, sys, time, urllib.request, urllib.error
url, pid, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + limit
last = "no answer"
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(f"demo: the process serving {url} exited")
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except urllib.error.HTTPError as e:
        last = f"HTTP {e.code}: {e.read()[:300].decode(errors='replace')}"
    except OSError as e:
        last = str(e)
    time.sleep(0.2)
sys.exit(f"demo: {url} not ready after {limit:.0f}s ({last})")
PY
}

reg_port=$(free_port)
api_port=$(free_port)
grpc_port=$(free_port)
registry=127.0.0.1:$reg_port

say "Starting a local registry on $registry"
mkdir -p "$work/registry"
cat > "$work/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $registry
YAML
env -u REGISTRY_HTTP_ADDR docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
wait_http "http://$registry/v2/" "$registry_pid" 30

say "The local base image (built when missing or changed; no pull)"
"$root/scripts/make-base-image.sh"

say "Starting slipway (API on 127.0.0.1:$api_port, gRPC on 127.0.0.1:$grpc_port)"
cat > "$work/config.yaml" <<YAML
FEATURE_BUILD_SUPPORT: true
SERVER_HOSTNAME: $registry
INSECURE_REGISTRIES:
  - $registry
DATA_DIR: $work/data
API_LISTEN_ADDRESS: 127.0.0.1:$api_port
GRPC_LISTEN_ADDRESS: 127.0.0.1:$grpc_port
BUILD_MANAGER:
  - ephemeral
  - EXECUTORS:
      - EXECUTOR: local
YAML
cat "$work/config.yaml"
# serve writes the admin token where the CLI looks for it: keep that out of the user's config
export XDG_CONFIG_HOME=$work/xdg
unset SLIPWAY_URL SLIPWAY_TOKEN
"$slipway" serve --config "$work/config.yaml" > "$work/serve.log" 2>&1 &
server_pid=$!
wait_http "http://127.0.0.1:$api_port/readyz" "$server_pid" 60

say "slipway build examples/hello -t $registry/demo/hello:latest -t $registry/demo/hello:v1"
"$slipway" build "$root/examples/hello" \
    -t "$registry/demo/hello:latest" -t "$registry/demo/hello:v1" \
    --build-arg GREETING="Hello from the slipway demo"

say "The builds of demo/hello"
"$slipway" builds demo/hello

say "skopeo inspect docker://$registry/demo/hello:v1"
skopeo inspect --tls-verify=false "docker://$registry/demo/hello:v1"
skopeo inspect --tls-verify=false "docker://$registry/demo/hello:latest" > /dev/null

say "Demo finished: the image was built by a slipway worker and pushed to $registry"
