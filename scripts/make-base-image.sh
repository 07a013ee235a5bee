#!/bin/sh
# Build the local base image localhost/slipway-base:latest FROM scratch out of the
# static busybox of this machine (Debian busybox-static), with `busybox --install -s` run
# inside so RUN steps have /bin/sh and the usual tools. Never pulls anything.
#
# usage: scripts/make-base-image.sh [--force] [IMAGE]
#   --force         rebuild even if the image exists
#   IMAGE           default localhost/slipway-base:latest
# env: STORAGE_DRIVER (e.g. vfs) is passed to podman as --storage-driver, the same
#      variable the worker reads, so both use the same image store.
#      BUSYBOX (default /bin/busybox), BUILDAH_ISOLATION (default chroot).
set -eu

force=0
image=localhost/slipway-base:latest
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        -*) echo "make-base-image: unknown option $arg (try --help)" >&2; exit 2 ;;
        *) image=$arg ;;
    esac
done

busybox=${BUSYBOX:-/bin/busybox}
isolation=${BUILDAH_ISOLATION:-chroot}
set -- podman
if [ -n "${STORAGE_DRIVER:-}" ]; then
    set -- "$@" --storage-driver "$STORAGE_DRIVER"
fi

if [ "$force" -eq 0 ] && "$@" image exists "$image"; then
    echo "make-base-image: $image already present (use --force to rebuild)"
    exit 0
fi
if [ ! -x "$busybox" ]; then
    echo "make-base-image: $busybox not found: install busybox-static (apt-get install busybox-static)" >&2
    exit 1
fi
if ! "$busybox" --list >/dev/null 2>&1; then
    echo "make-base-image: $busybox is not a working busybox binary" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/slipway-base.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cp "$busybox" "$work/busybox"
cat > "$work/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /tmp /etc /root /usr/bin /sbin /usr/sbin && chmod 1777 /tmp && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'root:x:0:' > /etc/group"]
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/sh"]
DOCKERFILE

"$@" build --isolation "$isolation" --pull=never --layers=false --format docker -t "$image" "$work"
echo "make-base-image: built $image"
