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
  [npm]=npm  # the tests' npm packages (tests/support/forge: GitHub's webhook examples)
  [sshd]=openssh-server  # the trigger tests' git server over SSH (a deploy key)
  [redis-server]=redis-server
  [pg_ctlcluster]=postgresql
  [nft]=nftables
  [chromium]=chromium  # the web UI's and /docs' tests (driven by Playwright, no browser download)
  [mmdebstrap]=mmdebstrap  # the base of slipway's own images (make images)
  [runc]=runc  # runs the images in tests: crun refuses this kind of machine's cgroups
  [fuse-overlayfs]=fuse-overlayfs
  # multi-platform builds (docs/multi-arch.md): QEMU user emulation, registered with binfmt
  [qemu-aarch64-static]=qemu-user-static
  [update-binfmts]=binfmt-support
  # a real OpenID provider in the tests (npm oidc-provider, tests/support/oidc/)
  [node]=nodejs
  [npm]=npm
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
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# QEMU's binfmt entries live in the kernel, not on disk: a machine (or container) where
# binfmt_misc is not mounted, or whose entries went at a reboot, gets them (again) here.
# Best effort: where this is not allowed, the multi-arch tests say why they skip.
register_emulation() {
  local binfmt=/proc/sys/fs/binfmt_misc
  [ -e "$binfmt/register" ] || $SUDO mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || return 0
  [ -e "$binfmt/qemu-aarch64" ] && return 0
  command -v update-binfmts >/dev/null 2>&1 || return 0
  for format in /usr/share/binfmts/qemu-*; do
    [ -e "$format" ] && $SUDO update-binfmts --enable "$(basename "$format")" >/dev/null 2>&1 || true
  done
  [ -e "$binfmt/qemu-aarch64" ] && echo "QEMU user emulation: registered with binfmt_misc"
  return 0
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  register_emulation
  exit 0
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" file >/dev/null
register_emulation
echo "system packages: done"
