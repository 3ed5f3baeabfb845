#!/usr/bin/env bash
# Files-only image: strata against `buildah from scratch; copy; config;
# commit`, side by side in one run, plus the command-line compressors on the
# same bytes, a no-op rebuild and peak memory.
# Run from the repository root: `bash benches/compare.sh [RUNS]`.
# The tree: ~56 MB in 3,550 files picked (deterministically) from the host's
# Python, Perl and shared-library folders.
set -euo pipefail
runs=${1:-3}
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet
strata="$root/target/release/strata"

mkdir -p "$work/ctx/tree"
( cd /usr && find lib/python3* share/perl share/vim share/X11 share/i18n lib/x86_64-linux-gnu share/doc \
      -type f -size -400k 2>/dev/null | sort | awk 'NR % 3 == 0 && ++n <= 3550' > "$work/list" )
( cd /usr && tar -cf - -T "$work/list" ) | tar -xf - -C "$work/ctx/tree"
files=$(find "$work/ctx/tree" -type f | wc -l)
bytes=$(du -sb "$work/ctx/tree" | cut -f1)
cat > "$work/ctx/image.kdl" <<'KDL'
name "bench"
version "1"
base "scratch"
platform "linux/amd64"
user "analyst" uid=10001 gid=10001
layer "tree" {
    copy "tree/" "/opt/tree/"
}
entrypoint "/bin/true"
KDL

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
time_it() { local t0; t0=$(now); "$@" >/dev/null 2>&1; echo "$(now) - $t0" | bc; }

strata_build() { # compression
    rm -rf "$work/cache" "$work/out"
    STRATA_CACHE="$work/cache" SOURCE_DATE_EPOCH=1 "$strata" build "$work/ctx/image.kdl" -o "$work/out" --compression "$1"
}
buildah_build() {
    local b=(buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver vfs)
    rm -rf "$work/buildah" "$work/buildah-out"
    local c
    c=$("${b[@]}" from scratch)
    "${b[@]}" copy "$c" "$work/ctx/tree" /opt/tree
    "${b[@]}" config --user 10001:10001 --entrypoint '["/bin/true"]' "$c"
    "${b[@]}" commit --disable-compression=false "$c" "oci:$work/buildah-out:bench"
}

declare -A t
for name in buildah gzip zstd; do
    samples=()
    for i in $(seq "$runs"); do
        case $name in
            buildah) samples+=("$(time_it buildah_build)") ;;
            gzip) samples+=("$(time_it strata_build gzip)") ;;
            zstd) samples+=("$(time_it strata_build zstd)") ;;
        esac
    done
    t[$name]=$(printf '%s\n' "${samples[@]}" | median)
done

strata_build gzip >/dev/null 2>&1
samples=()
for i in $(seq "$runs"); do
    samples+=("$(time_it env STRATA_CACHE="$work/cache" SOURCE_DATE_EPOCH=1 "$strata" build "$work/ctx/image.kdl" -o "$work/out")")
done
t[rebuild]=$(printf '%s\n' "${samples[@]}" | median)

# The same bytes through the command-line tools: strata's own layer tar.
layer=$(ls -S "$work/out/blobs/sha256" | head -1)
gzip -dc "$work/out/blobs/sha256/$layer" > "$work/layer.tar"
t[gzip_cli]=$(time_it gzip -6 -c "$work/layer.tar")
t[zstd_cli]=$(time_it zstd -q -3 -T0 -c "$work/layer.tar")

rm -rf "$work/cache" "$work/out"
/usr/bin/time -f '%M' -o "$work/rss" env STRATA_CACHE="$work/cache" SOURCE_DATE_EPOCH=1 "$strata" build "$work/ctx/image.kdl" -o "$work/out" >/dev/null 2>&1

printf 'tree                          %s files, %s bytes\n' "$files" "$bytes"
printf 'buildah (gzip)                %.2f s\n' "${t[buildah]}"
printf 'strata gzip (cold)            %.2f s   buildah/strata = %.1fx (target >= 2)\n' "${t[gzip]}" "$(echo "${t[buildah]} / ${t[gzip]}" | bc -l)"
printf 'strata zstd (cold)            %.2f s   buildah/strata = %.1fx (target >= 5)\n' "${t[zstd]}" "$(echo "${t[buildah]} / ${t[zstd]}" | bc -l)"
printf 'gzip -6 of the layer tar      %.2f s   strata-gzip/cli = %.2f (target <= 1.5)\n' "${t[gzip_cli]}" "$(echo "${t[gzip]} / ${t[gzip_cli]}" | bc -l)"
printf 'zstd -3 -T0 of the layer tar  %.2f s   strata-zstd/cli = %.2f (target <= 1.5)\n' "${t[zstd_cli]}" "$(echo "${t[zstd]} / ${t[zstd_cli]}" | bc -l)"
printf 'strata no-op rebuild          %.3f s (target < 0.2 s)\n' "${t[rebuild]}"
printf 'strata peak memory (gzip)     %s KB\n' "$(cat "$work/rss")"
