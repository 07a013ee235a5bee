#!/bin/sh
# Build the local multi-arch base localhost/slipway-base:multiarch, a manifest list of the
# busybox base for this machine's architecture and for each ARCH given (default arm64),
# for multi-platform builds to start FROM (docs/multi-arch.md). Never pulls an image: the
# other architectures' busybox comes from the Debian mirror (scripts/make-base-image.sh
# --arch) and their RUN step runs under QEMU user emulation.
#
# usage: scripts/make-multiarch-base.sh [--force] [ARCH...]
# env: STORAGE_DRIVER, as for scripts/make-base-image.sh.
set -eu

here=$(dirname "$0")
force=""
if [ "${1:-}" = --force ]; then force=--force; shift; fi
[ $# -gt 0 ] || set -- arm64
list=localhost/slipway-base:multiarch
podman_cmd="podman${STORAGE_DRIVER:+ --storage-driver $STORAGE_DRIVER}"

if [ -z "$force" ] && $podman_cmd manifest inspect "$list" >/dev/null 2>&1; then
    echo "make-multiarch-base: $list already present (use --force to rebuild)"
    exit 0
fi
"$here/make-base-image.sh" $force
images=localhost/slipway-base:latest
for arch in "$@"; do
    "$here/make-base-image.sh" $force --arch "$arch"
    images="$images localhost/slipway-base:latest-$arch"
done
$podman_cmd manifest rm "$list" >/dev/null 2>&1 || true
$podman_cmd manifest create "$list" >/dev/null
for image in $images; do
    $podman_cmd manifest add "$list" "containers-storage:$image" >/dev/null
done
echo "make-multiarch-base: built $list ($images)"
