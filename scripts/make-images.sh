#!/usr/bin/env bash
# Build slipway's two images without pulling anything:
#   1. the base, localhost/slipway-debian:bookworm: Debian minbase made by mmdebstrap from
#      the package mirror this machine's apt uses, imported into podman (once);
#   2. the wheelhouse: `pip wheel` of slipway and its dependencies on this host (.work/wheels);
#   3. IMAGE_REPO/slipway:VERSION (the manager) and IMAGE_REPO/slipway-worker:VERSION (the
#      build worker) from deploy/images/*.Containerfile, VERSION being pyproject's.
# Safe to run again: the base is kept, podman's layer cache keeps the Debian layers.
#
# usage: scripts/make-images.sh [--rebuild-base] [--base-only] [slipway|slipway-worker ...]
#        --base-only: step 1 alone (the Debian base some tests build FROM)
# env:   IMAGE_REPO (default quay.io/slipway), PYTHON (default .venv/bin/python),
#        DEBIAN_SUITE (default bookworm), STORAGE_DRIVER (passed to podman as --storage-driver)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf '==> %s\n' "$*"; }
die() { printf 'make-images: %s\n' "$*" >&2; exit 1; }

rebuild_base=0
base_only=0
images=()
for arg in "$@"; do
    case "$arg" in
        --rebuild-base) rebuild_base=1 ;;
        --base-only) base_only=1 ;;
        slipway|slipway-worker) images+=("$arg") ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) die "unknown argument $arg (try --help)" ;;
    esac
done
[ ${#images[@]} -gt 0 ] || images=(slipway slipway-worker)

repo=${IMAGE_REPO:-quay.io/slipway}
suite=${DEBIAN_SUITE:-bookworm}
base=localhost/slipway-debian:$suite
python=${PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || die "$python not found: run 'make venv' first (or set PYTHON)"
podman=(podman)
[ -z "${STORAGE_DRIVER:-}" ] || podman+=(--storage-driver "$STORAGE_DRIVER")
for tool in podman mmdebstrap; do
    command -v "$tool" >/dev/null || die "$tool is not installed: run 'make system'"
done
version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')

work=$root/.work/images
mkdir -p "$work"
start=$SECONDS

# 1. the base
if [ "$rebuild_base" -eq 1 ] || ! "${podman[@]}" image exists "$base"; then
    say "base: mmdebstrap $suite minbase (from the Debian mirror) -> $base"
    sources=""
    for candidate in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        if [ -s "$candidate" ]; then sources=$candidate; break; fi
    done
    [ -n "$sources" ] || die "no apt sources found (/etc/apt/sources.list.d/debian.sources)"
    rm -f "$work/base.tar"
    # docs, man pages and locales are left out of this and every later install
    if ! mmdebstrap --variant=minbase --mode=root --format=tar --quiet \
        --aptopt='Acquire::Check-Valid-Until "false"' \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook='chroot "$1" apt-cache show --no-all-versions python3 | sed -n "s/^Version: \([0-9.]*\).*/\1/p" > "$1/tmp/python-version"' \
        --customize-hook='copy-out /tmp/python-version '"$work" \
        --customize-hook='rm -f "$1/tmp/python-version"' \
        "$suite" "$work/base.tar" "$sources" >"$work/mmdebstrap.log" 2>&1; then
        tail -n 30 "$work/mmdebstrap.log" >&2
        die "mmdebstrap failed (log: $work/mmdebstrap.log)"
    fi
    # the Python that Debian's python3 is, for the wheelhouse's environment markers
    python_version=$(cat "$work/python-version")
    [ -n "$python_version" ] || die "could not tell the version of Debian $suite's python3"
    "${podman[@]}" import --quiet --change 'CMD ["/bin/bash"]' \
        --change "LABEL io.slipway.python-version=$python_version" \
        --message "Debian $suite minbase (mmdebstrap)" "$work/base.tar" "$base" >/dev/null
    rm -f "$work/base.tar"
else
    say "base: $base already present (--rebuild-base to make it again)"
fi
[ "$base_only" -eq 0 ] || exit 0

# 2. the wheelhouse, for the Python of the base (Debian's python3)
say "wheelhouse: pip wheel slipway and its dependencies -> .work/wheels"
host_py=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
image_python=$("${podman[@]}" image inspect --format '{{index .Labels "io.slipway.python-version"}}' "$base")
case "$image_python" in
    "$host_py".*) ;;
    *) die "the wheelhouse is built with Python $host_py ($python) but Debian $suite has Python $image_python: set PYTHON to a Python ${image_python%.*}" ;;
esac
rm -rf "$work/context"
mkdir -p "$work/context" "$root/.work/wheels"
rm -f "$root/.work/wheels"/slipway-*.whl
if ! "$python" -m pip wheel --quiet --disable-pip-version-check -w "$root/.work/wheels" "$root" \
    >"$work/pip-wheel.log" 2>&1; then
    grep -v "^WARNING: Location" "$work/pip-wheel.log" | tail -n 30 >&2
    die "pip wheel failed (log: $work/pip-wheel.log)"
fi
# pip resolves markers for the Python running it: add what the image's Python asks for
# more (python_full_version < "3.11.3" and the like), until nothing is missing
for _ in 1 2 3; do
    extras=$("$python" scripts/wheelhouse-extras.py "$root/.work/wheels" "$image_python")
    [ -n "$extras" ] || break
    say "wheelhouse: for Python $image_python also $(echo $extras)"
    # shellcheck disable=SC2086
    if ! "$python" -m pip wheel --quiet --disable-pip-version-check -w "$root/.work/wheels" \
        $extras >>"$work/pip-wheel.log" 2>&1; then
        grep -v "^WARNING: Location" "$work/pip-wheel.log" | tail -n 30 >&2
        die "pip wheel of $extras failed (log: $work/pip-wheel.log)"
    fi
done
cp "$root/.work/wheels"/*.whl "$work/context/"
cp "$root"/deploy/images/* "$work/context/"

# 3. the images
for name in "${images[@]}"; do
    tag=$repo/$name:$version
    say "image: $tag"
    if ! "${podman[@]}" build --pull=never --isolation chroot --format docker \
        --build-arg "BASE=$base" --build-arg "VERSION=$version" --build-arg "WHEEL_PYTHON=$host_py" \
        -f "$work/context/$name.Containerfile" -t "$tag" "$work/context" \
        >"$work/$name.log" 2>&1; then
        tail -n 40 "$work/$name.log" >&2
        die "building $tag failed (log: $work/$name.log)"
    fi
    size=$("${podman[@]}" image inspect --format '{{.Size}}' "$tag")
    say "built $tag ($((size / 1000000)) MB)"
done
say "images done in $((SECONDS - start)) s"
