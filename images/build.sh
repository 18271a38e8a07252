#!/bin/sh
# Builds the library image of one language, flavor and version and pushes it, with no Docker
# engine: a bundle per platform (`libinject bundle LANGUAGE --platform P`: only the code that
# platform's nodes run; Java's agent is the same bytes everywhere, so one bundle serves both),
# then `libinject image` puts each beside a static busybox for that platform (the copy step's
# program) in one layer and pushes one OCI index over the platforms' images with crane.
#
#   images/build.sh LANGUAGE FLAVOR VERSION REPOSITORY
#   e.g. CRANE=... BUSYBOX_AMD64=... BUSYBOX_ARM64=... \
#        images/build.sh python ddtrace 4.16.0 localhost:5000/libinject
#        -> localhost:5000/libinject/python-ddtrace:4.16.0 (linux/amd64 and linux/arm64)
#
# CRANE names crane; BUSYBOX_AMD64 and BUSYBOX_ARM64 a static busybox for each platform built
# (Debian's busybox-static of that architecture; make testbin fetches this machine's);
# PLATFORMS the platforms (default: "linux/amd64 linux/arm64"); LIBINJECT the libinject command
# (default: the one on PATH). Extra bundle flags go in BUNDLE_FLAGS: --cache DIR, or Python's
# --target TAG for a quick image of one interpreter (with PLATFORMS set to its platform).
set -eu
[ $# -eq 4 ] || { echo "usage: $0 LANGUAGE FLAVOR VERSION REPOSITORY" >&2; exit 2; }
language=$1 flavor=$2 version=$3 repository=$4
here=$(cd "$(dirname "$0")" && pwd)
: "${CRANE:?set CRANE to the crane binary}"
libinject=${LIBINJECT:-libinject}
case $language in
    python | java | nodejs) ;;
    *) echo "$0: no images for language $language (python, java, nodejs)" >&2; exit 2 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# bundle PLATFORM OUT: the language's bundle for PLATFORM into OUT (its report beside it)
bundle() {
    # shellcheck disable=SC2086 # BUNDLE_FLAGS is a list of flags
    case $language in
        python) "$libinject" bundle python --platform "$1" --flavor "$flavor" \
            --version "$version" --out "$2" ${BUNDLE_FLAGS:-} ;;
        nodejs) "$libinject" bundle nodejs --platform "$1" --flavor "$flavor" \
            --version "$version" --out "$2" --locks "$here/nodejs/locks" ${BUNDLE_FLAGS:-} ;;
        java) [ -d "$work/java" ] || "$libinject" bundle java --flavor "$flavor" \
            --version "$version" --out "$work/java" --locks "$here/java/locks" ${BUNDLE_FLAGS:-} ;;
    esac >"$2.json"
}

# busybox PLATFORM: the static busybox given for PLATFORM (checked for every one before a build)
busybox() {
    case $1 in
        linux/amd64) echo "${BUSYBOX_AMD64:?set BUSYBOX_AMD64 to a static busybox for amd64}" ;;
        linux/arm64) echo "${BUSYBOX_ARM64:?set BUSYBOX_ARM64 to a static busybox for arm64}" ;;
        *) echo "$0: no images for platform $1 (linux/amd64, linux/arm64)" >&2; exit 2 ;;
    esac
}

platforms=${PLATFORMS:-linux/amd64 linux/arm64}
for platform in $platforms; do busybox "$platform" >/dev/null; done
set --
for platform in $platforms; do
    out=$work/${platform#linux/}
    bundle "$platform" "$out"
    [ "$language" = java ] && out=$work/java
    set -- "$@" --image "$platform" "$out" "$(busybox "$platform")"
done
"$libinject" image "$@" --crane "$CRANE" --tag "$repository/$language-$flavor:$version"
