#!/bin/sh
# Builds the Java library image for one flavor and version and pushes it, with no Docker engine:
# `libinject bundle java` takes the agent jar from Maven Central (only bytes that match the
# committed lock in locks/) and puts libinject's launcher agent beside it; `libinject image`
# puts that bundle and a static busybox (the copy step's program) in one layer and pushes it
# with go-containerregistry's crane.
#
#   images/java/build.sh FLAVOR VERSION REPOSITORY
#   e.g. CRANE=~/go/bin/crane BUSYBOX=/bin/busybox images/java/build.sh ddtrace 1.56.0 \
#        localhost:5000/libinject        -> localhost:5000/libinject/java-ddtrace:1.56.0
#
# CRANE and BUSYBOX name the tools (make testbin fetches both into ~/.cache/libinject);
# LIBINJECT the libinject command (default: the one on PATH). Extra bundle flags, such as
# --cache DIR for where the agent jars are kept, go in BUNDLE_FLAGS.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 FLAVOR VERSION REPOSITORY" >&2; exit 2; }
flavor=$1 version=$2 repository=$3
: "${CRANE:?set CRANE to the crane binary}" "${BUSYBOX:?set BUSYBOX to a static busybox}"
libinject=${LIBINJECT:-libinject}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2086 # BUNDLE_FLAGS is a list of flags
"$libinject" bundle java --flavor "$flavor" --version "$version" --out "$work/bundle" \
    --locks "$(dirname "$0")/locks" ${BUNDLE_FLAGS:-} >"$work/report.json"
"$libinject" image --bundle "$work/bundle" --copy-program "$BUSYBOX" --crane "$CRANE" \
    --tag "$repository/java-$flavor:$version"
