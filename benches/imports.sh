#!/usr/bin/env bash
# Python import time on a read-only root, whole program: a strata image of
# Debian's pandas and SciPy (with byte-code, the default; and with
# `bytecode #false`) against the tree real dpkg makes of the same packages
# (`mmdebstrap --variant=essential`), side by side in one run. Each run
# starts a fresh interpreter under bubblewrap with the root mounted
# read-only, as a TRE runs containers: nothing can be cached at run time.
# Prints the medians and the ratio the byte-code goal is stated in
# (strata / dpkg, target <= 1.2), and each image's compressed size with and
# without byte-code.
#
# Run from the repository root: `bash benches/imports.sh [RUNS]` (RUNS=5).
# Needs mmdebstrap and bwrap (`.ci/run` installs both) and the Debian
# mirror; run as root (mmdebstrap's root mode) or where it can unshare.
set -euo pipefail
source benches/common.sh
runs=${1:-5}
packages=(python3-pandas python3-scipy python3-numpy)
import='import pandas, scipy.stats, numpy'

recipe() {
    cat <<KDL
name "imports"
base "scratch"
platform "linux/amd64"
tre #false
debian "bookworm" {
    install $(printf '"%s" ' "${packages[@]}")
    $1
}
cmd "/usr/bin/python3"
KDL
}
unpack() {
    local layout=$1 rootfs=$2
    mkdir -p "$rootfs"
    for layer in $(jq -r '.layers[].digest' "$layout/blobs/sha256/$(jq -r '.manifests[0].digest' "$layout/index.json" | cut -d: -f2)" | cut -d: -f2); do
        tar -xf "$layout/blobs/sha256/$layer" -C "$rootfs"
    done
}
size() { jq '[.layers[].size] | add' "$1/blobs/sha256/$(jq -r '.manifests[0].digest' "$1/index.json" | cut -d: -f2)"; }

mkdir -p "$work/with" "$work/without"
recipe "" >"$work/with/image.kdl"
recipe "bytecode #false" >"$work/without/image.kdl"
for variant in with without; do
    "$strata" build "$work/$variant/image.kdl" -o "$work/$variant/out" --quiet
    unpack "$work/$variant/out" "$work/$variant/root"
done
mmdebstrap --quiet --variant=essential --include="$(IFS=,; echo "${packages[*]}")" bookworm \
    "$work/dpkg" "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main"

measure() {
    local rootfs=$1
    # One warm-up run so that the page cache holds the files for every tree.
    bwrap --ro-bind "$rootfs" / --proc /proc --dev /dev --tmpfs /tmp --unshare-all \
        /usr/bin/python3 -c "$import" >/dev/null 2>&1
    for _ in $(seq "$runs"); do
        elapsed bwrap --ro-bind "$rootfs" / --proc /proc --dev /dev --tmpfs /tmp --unshare-all \
            /usr/bin/python3 -c "$import"
    done | median
}
dpkg=$(measure "$work/dpkg")
with=$(measure "$work/with/root")
without=$(measure "$work/without/root")
printf '%-34s %8s\n' "tree (read-only root)" "seconds"
printf '%-34s %8.3f\n' "dpkg (mmdebstrap)" "$dpkg" "strata (byte-code)" "$with" "strata (bytecode #false)" "$without"
printf 'ratio strata/dpkg: %.2f (byte-code), %.2f (without)\n' \
    "$(echo "$with / $dpkg" | bc -l)" "$(echo "$without / $dpkg" | bc -l)"
printf 'compressed image size: %s bytes with byte-code, %s without\n' \
    "$(size "$work/with/out")" "$(size "$work/without/out")"
