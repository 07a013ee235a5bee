#!/bin/sh
# Build the local base image localhost/slipway-base:latest FROM scratch out of the
# static busybox of this machine (Debian busybox-static), with `busybox --install -s` run
# inside so RUN steps have /bin/sh and the usual tools. Never pulls anything.
#
# usage: scripts/make-base-image.sh [--force] [--arch ARCH] [IMAGE]
#   --force         rebuild even if the image exists
#   --arch ARCH     a Debian architecture other than this machine's (e.g. arm64): its
#                   busybox-static is taken from the Debian mirror this machine's apt uses
#                   (mmdebstrap --variant=extract, kept in ~/.cache/slipway) and the RUN
#                   step runs under QEMU user emulation (qemu-user-static, binfmt)
#   IMAGE           default localhost/slipway-base:latest (with --arch: latest-ARCH)
# env: STORAGE_DRIVER (e.g. vfs) is passed to podman as --storage-driver, the same
#      variable the worker reads, so both use the same image store.
#      BUSYBOX (default /bin/busybox), BUILDAH_ISOLATION (default chroot).
set -eu

force=0
image=""
arch=""
while [ $# -gt 0 ]; do
    case "$1" in
        --force) force=1 ;;
        --arch) shift; arch=${1:?--arch needs a Debian architecture, e.g. arm64} ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        -*) echo "make-base-image: unknown option $1 (try --help)" >&2; exit 2 ;;
        *) image=$1 ;;
    esac
    shift
done
native=$(dpkg --print-architecture 2>/dev/null || echo amd64)
[ "$arch" != "$native" ] || arch=""
image=${image:-localhost/slipway-base:latest${arch:+-$arch}}

busybox=${BUSYBOX:-/bin/busybox}
platform=""
if [ -n "$arch" ]; then
    platform=linux/$arch
    [ "$arch" = armhf ] && platform=linux/arm/v7
    [ "$arch" = armel ] && platform=linux/arm/v5
    [ "$arch" = i386 ] && platform=linux/386
    [ "$arch" = ppc64el ] && platform=linux/ppc64le
fi
isolation=${BUILDAH_ISOLATION:-chroot}
set -- podman
if [ -n "${STORAGE_DRIVER:-}" ]; then
    set -- "$@" --storage-driver "$STORAGE_DRIVER"
fi

if [ "$force" -eq 0 ] && "$@" image exists "$image"; then
    echo "make-base-image: $image already present (use --force to rebuild)"
    exit 0
fi
if [ -n "$arch" ] && [ -z "${BUSYBOX:-}" ]; then
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/slipway
    busybox=$cache/busybox-$arch
    if [ ! -x "$busybox" ]; then
        command -v mmdebstrap >/dev/null || {
            echo "make-base-image: --arch needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 1; }
        mkdir -p "$cache"
        tarball=$(mktemp "${TMPDIR:-/tmp}/busybox-$arch.XXXXXX.tar")
        sources=/etc/apt/sources.list.d/debian.sources
        [ -s "$sources" ] || sources=/etc/apt/sources.list
        suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
        if ! mmdebstrap --arch="$arch" --variant=extract --include=busybox-static --quiet \
                --format=tar "$suite" "$tarball" "$sources" </dev/null >&2; then
            rm -f "$tarball"
            echo "make-base-image: mmdebstrap could not fetch busybox-static:$arch" >&2; exit 1
        fi
        tar -xOf "$tarball" ./bin/busybox > "$busybox.part" && chmod 755 "$busybox.part"
        mv "$busybox.part" "$busybox"
        rm -f "$tarball"
    fi
fi
if [ ! -x "$busybox" ]; then
    echo "make-base-image: $busybox not found: install busybox-static (apt-get install busybox-static)" >&2
    exit 1
fi
if [ -z "$arch" ] && ! "$busybox" --list >/dev/null 2>&1; then
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

"$@" build ${platform:+--platform "$platform"} --isolation "$isolation" --pull=never --layers=false --format docker -t "$image" "$work"
echo "make-base-image: built $image"
