#!/bin/sh
# Builds the Python library image for one flavor and version and pushes it, with no Docker
# engine: `libinject bundle python` installs the library from wheels for every interpreter,
# platform and arch; `libinject image` puts that bundle and a static busybox (the copy step's
# program) in one layer and pushes it with go-containerregistry's crane.
#
#   images/python/build.sh FLAVOR VERSION REPOSITORY
#   e.g. CRANE=~/go/bin/crane BUSYBOX=/bin/busybox images/python/build.sh ddtrace 4.16.0 \
#        localhost:5000/libinject        -> localhost:5000/libinject/python-ddtrace:4.16.0
#
# CRANE and BUSYBOX name the tools (make testbin fetches both into ~/.cache/libinject);
# LIBINJECT the libinject command (default: the one on PATH). Extra bundle flags, such as
# --target cp311-manylinux-x86_64 for a quick local image, go in BUNDLE_FLAGS.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 FLAVOR VERSION REPOSITORY" >&2; exit 2; }
flavor=$1 version=$2 repository=$3
: "${CRANE:?set CRANE to the crane binary}" "${BUSYBOX:?set BUSYBOX to a static busybox}"
libinject=${LIBINJECT:-libinject}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2086 # BUNDLE_FLAGS is a list of flags
"$libinject" bundle python --flavor "$flavor" --version "$version" --out "$work/bundle" \
    ${BUNDLE_FLAGS:-} >"$work/report.json"
"$libinject" image --bundle "$work/bundle" --copy-program "$BUSYBOX" --crane "$CRANE" \
    --tag "$repository/python-$flavor:$version"
