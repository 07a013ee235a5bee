#!/bin/sh
# Removes from the image's virtualenv what slipway never loads at run time (issue 16,
# smaller images). Run in the install stage before compileall, with the venv as $1.
# What goes and why:
#   - botocore's service models except ec2 (the ec2 executor), s3 (S3 user files) and sts
#     (credentials): about 28 MB of the 32 MB botocore is models of services slipway never
#     calls; the top-level files (endpoints, partitions, retry, defaults) stay, botocore
#     loads them for every client. boto3's resource models likewise (slipway uses clients).
#   - setuptools, pkg_resources, _distutils_hack: seeded by `python -m venv`, needed only to
#     install packages, which nobody does in the image (pip is gone too).
#   - packages' own test suites (tests/ directories), C/Cython sources and type stubs
#     (.c, .pyx, .pxd, .h, .pyi): no import reads them.
set -eu
venv=$1
site=$(echo "$venv"/lib/python3*/site-packages)
keep_services="ec2 s3 sts"
if [ -d "$site/botocore/data" ]; then
    for dir in "$site"/botocore/data/*/; do
        service=$(basename "$dir")
        case " $keep_services " in *" $service "*) ;; *) rm -rf "$dir" ;; esac
    done
fi
if [ -d "$site/boto3/data" ]; then
    for dir in "$site"/boto3/data/*/; do
        service=$(basename "$dir")
        case " $keep_services " in *" $service "*) ;; *) rm -rf "$dir" ;; esac
    done
fi
rm -rf "$site"/setuptools "$site"/setuptools-*.dist-info "$site"/pkg_resources \
       "$site"/_distutils_hack "$site"/distutils-precedence.pth
find "$site" -type d -name tests -prune -exec rm -rf {} +
find "$site" -type f \( -name '*.c' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.h' \
                        -o -name '*.pyi' \) -delete
