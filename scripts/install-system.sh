#!/usr/bin/env bash
# Installs the Debian packages slipway's tests and demo use, only when one is missing.
# Safe to run again: it does nothing when everything is there.
set -euo pipefail

# command -> package
declare -A NEED=(
  [podman]=podman
  [buildah]=buildah
  [skopeo]=skopeo
  [docker-registry]=docker-registry
  [busybox]=busybox-static
  [newuidmap]=uidmap
  [git]=git
  [redis-server]=redis-server
  [pg_ctlcluster]=postgresql
  [nft]=nftables
  [chromium]=chromium  # the web UI's and /docs' tests (driven by Playwright, no browser download)
  [mmdebstrap]=mmdebstrap  # the base of slipway's own images (make images)
  [runc]=runc  # runs the images in tests: crun refuses this kind of machine's cgroups
  [fuse-overlayfs]=fuse-overlayfs
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
# busybox must be the static build: the demo's base image copies it into FROM scratch
if command -v busybox >/dev/null 2>&1 && ! file -L "$(command -v busybox)" 2>/dev/null | grep -q static; then
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
fi
# a font for Chromium to render the UI's text with (screenshots, layout in tests)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" file >/dev/null
echo "system packages: done"
