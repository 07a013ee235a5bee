#!/bin/sh
# Build the local multi-arch base localhost/slipway-base:multiarch, a manifest list of the
# busybox base for this machine's architecture and for each ARCH given (default arm64),
# for multi-platform builds to start FROM (docs/multi-arch.md). Never pulls an image: the
# other architectures' busybox comes from the Debian mirror (scripts/make-base-image.sh
# --arch) and their RUN step runs under QEMU user emulation.
#
# usage: scripts/make-multiarch-base.sh [--force] [ARCH...]
#        scripts/make-multiarch-base.sh --sync
#   --force   rebuild the images (scripts/make-base-image.sh --force) and the list
#   --sync    only if the list exists: make it again when it does not name the current
#             images (make-base-image.sh runs this after it replaced an image)
# The list names its images by digest and does not keep them: it is made again whenever
# it does not name exactly the current localhost/slipway-base:latest and :latest-ARCH
# (a list whose instance was removed makes `podman images` fail for every user).
# env: STORAGE_DRIVER, as for scripts/make-base-image.sh.
set -eu

# one builder at a time per machine (test sessions in parallel share the image store):
# the script runs again under the lock, which the scripts it calls are told they hold
if [ -z "${SLIPWAY_BASE_LOCKED:-}" ] && command -v flock >/dev/null; then
    SLIPWAY_BASE_LOCKED=1
    export SLIPWAY_BASE_LOCKED
    exec flock "${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/slipway-base-image.lock" "$0" "$@"
fi

here=$(cd "$(dirname "$0")" && pwd)
force=""
sync=0
case "${1:-}" in
    --force) force=--force; shift ;;
    --sync) sync=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
esac
list=localhost/slipway-base:multiarch
podman_cmd="podman${STORAGE_DRIVER:+ --storage-driver $STORAGE_DRIVER}"

native=$(dpkg --print-architecture 2>/dev/null || echo amd64)
listed=$($podman_cmd manifest inspect "$list" 2>/dev/null || true)
if [ "$sync" -eq 1 ]; then
    [ -n "$listed" ] || exit 0  # no list: nothing to keep in step
    # the list's own architectures other than this machine's
    set -- $(printf '%s\n' "$listed" | sed -n 's/.*"architecture": *"\([^"]*\)".*/\1/p' |
             sed 's/^aarch64$/arm64/' | grep -vx "$native" | sort -u)
fi
[ $# -gt 0 ] || set -- arm64

# the images, each built only when missing or changed (the list is made below)
SLIPWAY_BASE_NO_LIST_SYNC=1 "$here/make-base-image.sh" $force
images=localhost/slipway-base:latest
for arch in "$@"; do
    SLIPWAY_BASE_NO_LIST_SYNC=1 "$here/make-base-image.sh" $force --arch "$arch"
    images="$images localhost/slipway-base:latest-$arch"
done

digests() {  # the sorted digests of what the list should name, or names
    for image in $images; do
        $podman_cmd image inspect --format '{{.Digest}}' "$image"
    done | sort
}
if [ -z "$force" ] && [ -n "$listed" ]; then
    named=$(printf '%s\n' "$listed" | sed -n 's/.*"digest": *"\(sha256:[0-9a-f]*\)".*/\1/p' | sort)
    if [ "$named" = "$(digests)" ]; then
        echo "make-multiarch-base: $list is up to date ($images)"
        exit 0
    fi
    echo "make-multiarch-base: $list does not name the current images: making it again"
fi
# (rm of a list whose instance is gone works; rmi is the fallback for an odd state)
$podman_cmd manifest rm "$list" >/dev/null 2>&1 || $podman_cmd rmi "$list" >/dev/null 2>&1 || true
$podman_cmd manifest create "$list" >/dev/null
for image in $images; do
    $podman_cmd manifest add "$list" "containers-storage:$image" >/dev/null
done
echo "make-multiarch-base: built $list ($images)"
