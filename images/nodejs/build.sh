#!/bin/sh
# Builds the Node.js library image for one flavor and version and pushes it, with no Docker
# engine: `libinject bundle nodejs` installs the flavor's npm packages with `npm ci` from the
# committed lock in locks/ (every integrity hash checked, for linux x64 and arm64, glibc and
# musl), prunes what the runtime never reads and puts libinject's loader beside them; `libinject
# image` puts that bundle and a static busybox (the copy step's program) in one layer and pushes
# it with go-containerregistry's crane.
#
#   images/nodejs/build.sh FLAVOR VERSION REPOSITORY
#   e.g. CRANE=~/go/bin/crane BUSYBOX=/bin/busybox images/nodejs/build.sh ddtrace 6.21.0 \
#        localhost:5000/libinject        -> localhost:5000/libinject/nodejs-ddtrace:6.21.0
#
# CRANE and BUSYBOX name the tools (make testbin fetches both into ~/.cache/libinject); npm must
# be on PATH (10.3 or later); LIBINJECT names the libinject command (default: the one on PATH).
# Extra bundle flags, such as --cache DIR for npm's cache, go in BUNDLE_FLAGS.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 FLAVOR VERSION REPOSITORY" >&2; exit 2; }
flavor=$1 version=$2 repository=$3
: "${CRANE:?set CRANE to the crane binary}" "${BUSYBOX:?set BUSYBOX to a static busybox}"
libinject=${LIBINJECT:-libinject}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2086 # BUNDLE_FLAGS is a list of flags
"$libinject" bundle nodejs --flavor "$flavor" --version "$version" --out "$work/bundle" \
    --locks "$(dirname "$0")/locks" ${BUNDLE_FLAGS:-} >"$work/report.json"
"$libinject" image --bundle "$work/bundle" --copy-program "$BUSYBOX" --crane "$CRANE" \
    --tag "$repository/nodejs-$flavor:$version"
