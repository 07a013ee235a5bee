#!/bin/sh
# Start slipway's build worker in a pod. The image store is overlay (fuse-overlayfs) when
# /dev/fuse is usable, else vfs: an unprivileged pod without the device still builds.
# STORAGE_DRIVER set by the executor wins. Any arguments replace the worker command.
set -eu
if [ -z "${STORAGE_DRIVER:-}" ]; then
    if [ -c /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ]; then
        STORAGE_DRIVER=overlay
    else
        STORAGE_DRIVER=vfs
    fi
    export STORAGE_DRIVER
fi
if [ "$#" -gt 0 ]; then
    exec "$@"
fi
exec /opt/slipway/bin/python -m slipway.worker
