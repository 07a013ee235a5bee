#!/bin/sh
# Build the local base image localhost/slipway-base:latest FROM scratch out of the
# static busybox of this machine (Debian busybox-static), with `busybox --install -s` run
# inside so RUN steps have /bin/sh and the usual tools. Never pulls anything.
#
# usage: scripts/make-base-image.sh [--force] [--arch ARCH] [IMAGE]
#   --force         rebuild even if the image is up to date
#   --arch ARCH     a Debian architecture other than this machine's (e.g. arm64): its
#                   busybox-static is taken from the Debian mirror this machine's apt uses
#                   (mmdebstrap --variant=extract, kept in ~/.cache/slipway) and the RUN
#                   step runs under QEMU user emulation (qemu-user-static, binfmt)
#   IMAGE           default localhost/slipway-base:latest (with --arch: latest-ARCH)
# env: STORAGE_DRIVER (e.g. vfs) is passed to podman as --storage-driver, the same
#      variable the worker reads, so both use the same image store.
#      BUSYBOX (default /bin/busybox), BUILDAH_ISOLATION (default chroot).
#
# This is the one builder of the base images (tests/support/images.py, the demo, the
# benchmarks and scripts/make-multiarch-base.sh all call it), and it keeps the host's
# image store usable:
#   - the recipe of each image it builds (the busybox binary's and this Dockerfile's
#     checksum) is noted under ~/.cache/slipway/base-recipes/IMAGE_ID (not as a label:
#     every image built FROM the base would inherit it); the image is rebuilt only when
#     its recipe changes (or with --force); an image with no note is kept;
#   - an image replaced here may be an instance of localhost/slipway-base:multiarch, a
#     manifest list: the list is made again from the new images right after (a list whose
#     instance is gone makes `podman images` fail for every user of the store), then the
#     replaced image, nameless, is removed;
#   - one build at a time per machine (flock), so parallel test sessions do not race.
set -eu

# one builder at a time per machine (test sessions in parallel share the image store):
# the script runs again under the lock, which the scripts it calls are told they hold
if [ -z "${SLIPWAY_BASE_LOCKED:-}" ] && command -v flock >/dev/null; then
    SLIPWAY_BASE_LOCKED=1
    export SLIPWAY_BASE_LOCKED
    exec flock "${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/slipway-base-image.lock" "$0" "$@"
fi

force=0
image=""
arch=""
while [ $# -gt 0 ]; do
    case "$1" in
        --force) force=1 ;;
        --arch) shift; arch=${1:?--arch needs a Debian architecture, e.g. arm64} ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
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

here=$(cd "$(dirname "$0")" && pwd)

present=0
"$@" image exists "$image" && present=1
if [ -n "$arch" ] && [ -z "${BUSYBOX:-}" ]; then
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/slipway
    busybox=$cache/busybox-$arch
    if [ ! -x "$busybox" ] && [ "$present" -eq 1 ] && [ "$force" -eq 0 ]; then
        # nothing to compare the image with but a download: the image is kept
        echo "make-base-image: $image already present (use --force to rebuild)"
        exit 0
    fi
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

# the recipe: what the image is made of; the image is rebuilt only when it changes
recipe=$( (cat "$work/busybox" "$work/Dockerfile"; echo "$platform") | sha256sum | cut -c1-64)
recipes=${XDG_CACHE_HOME:-$HOME/.cache}/slipway/base-recipes
old_id=""
if [ "$present" -eq 1 ]; then
    old_id=$("$@" image inspect --format '{{.Id}}' "$image")
    built_from=$(cat "$recipes/$old_id" 2>/dev/null || true)
    if [ "$force" -eq 0 ]; then
        if [ "$built_from" = "$recipe" ]; then
            echo "make-base-image: $image is up to date (use --force to rebuild)"
            exit 0
        fi
        if [ -z "$built_from" ]; then
            echo "make-base-image: $image already present (its recipe is not known here; use --force to rebuild)"
            exit 0
        fi
        echo "make-base-image: $image was built from another busybox or recipe: rebuilding"
    fi
fi

"$@" build ${platform:+--platform "$platform"} --isolation "$isolation" --pull=never --layers=false --format docker -t "$image" "$work"
new_id=$("$@" image inspect --format '{{.Id}}' "$image")
mkdir -p "$recipes"
echo "$recipe" > "$recipes/$new_id"
echo "make-base-image: built $image"
# a list naming the image this one replaces (or one removed before) is made again from
# the new one: a list whose instance is gone breaks `podman images` for every user
if [ -z "${SLIPWAY_BASE_NO_LIST_SYNC:-}" ]; then
    "$here/make-multiarch-base.sh" --sync
fi
# the replaced image, if nothing names it any more (a build still using it keeps it)
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ] &&
        [ "$("$@" image inspect --format '{{len .RepoTags}}' "$old_id" 2>/dev/null)" = 0 ]; then
    "$@" rmi "$old_id" >/dev/null 2>&1 || true
fi
