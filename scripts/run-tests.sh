#!/usr/bin/env bash
# make test's pytest run. With two cores or more, two pytest processes side by side: the
# tests that share the host's container image store (marked `image_store` by
# tests/conftest.py: real builds, the fault suite) run in one sequence, as they must, and
# all the others beside them, so that the suite's time is that of its longer half.
# One process when PYTEST_ARGS picks tests, or on one core.
#
# usage: scripts/run-tests.sh   (env: PYTEST_ARGS, passed to pytest as words)
set -uo pipefail
cd "$(dirname "$0")/.."
pytest=(.venv/bin/pytest -q -rs --durations=25)

if [ -n "${PYTEST_ARGS:-}" ] || [ "$(nproc)" -lt 2 ]; then
    # shellcheck disable=SC2086
    exec "${pytest[@]}" ${PYTEST_ARGS:-}
fi

logs=.work/test-logs
mkdir -p "$logs"
base=$(mktemp -d "${TMPDIR:-/tmp}/slipway-tests-XXXXXX")
# each its own temporary root (pytest removes old numbered roots, and another run's could
# be in use) and its own ports (tests/support/ports.py), below the kernel's ephemeral ones
SLIPWAY_TEST_PORTS=26000-32000 \
    "${pytest[@]}" -m "not image_store" -p no:cacheprovider --basetemp "$base/other" \
    >"$logs/other.log" 2>&1 &
other=$!
trap 'kill "$other" 2>/dev/null' EXIT

echo "tests: those sharing the host's image store below; the others run beside them" \
     "(their output: $logs/other.log, shown when both are done)"
SLIPWAY_TEST_PORTS=20000-25999 "${pytest[@]}" -m image_store --basetemp "$base/image-store"
store_status=$?
wait "$other"
other_status=$?
trap - EXIT

echo
echo "=================== the other tests (not image_store) ==================="
cat "$logs/other.log"
echo
status=0
for half in "image_store:$store_status" "the others:$other_status"; do
    code=${half##*:}
    if [ "$code" -ne 0 ] && [ "$code" -ne 5 ]; then  # 5: nothing collected
        echo "tests: ${half%:*} failed (pytest exit status $code)"
        status=1
    fi
done
[ "$status" -ne 0 ] || rm -rf "$base"
exit "$status"
