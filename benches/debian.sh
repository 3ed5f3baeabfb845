#!/usr/bin/env bash
# Cold build of Debian packages into an OCI image, strata against the fair
# baseline, side by side in one run:
#   mmdebstrap --variant=extract --include=<the same package list>, then
#   `umoci raw add-layer` of the tree into an OCI layout.
# Also: strata's warm rebuild (full cache, current lock) and its peak memory.
# Run from the repository root: `bash benches/debian.sh [RUNS]`.
set -euo pipefail
source benches/common.sh

packages=(python3-minimal ca-certificates)
debian_recipe "$work" bench


strata_cold=()
baseline=()
for i in $(seq "$runs"); do
    rm -rf "$work/cache" "$work/out" "$work/image.lock"
    t0=$(now)
    STRATA_CACHE="$work/cache" SOURCE_DATE_EPOCH=1 "$strata" build "$work/image.kdl" -o "$work/out" 2>/dev/null
    strata_cold+=("$(echo "$(now) - $t0" | bc)")

    baseline+=("$(baseline_debian)")
done
count=$(grep -c '^    package ' "$work/image.lock")

warm=()
for i in $(seq "$runs"); do
    t0=$(now)
    STRATA_CACHE="$work/cache" SOURCE_DATE_EPOCH=1 "$strata" build "$work/image.kdl" -o "$work/out" 2>/dev/null
    warm+=("$(echo "$(now) - $t0" | bc)")
done

rm -rf "$work/cache" "$work/out"
peak=$( { /usr/bin/time -f '%M' -o "$work/time.txt" env STRATA_CACHE="$work/cache" SOURCE_DATE_EPOCH=1 "$strata" build "$work/image.kdl" -o "$work/out" >/dev/null 2>/dev/null; cat "$work/time.txt"; } )

s=$(printf '%s\n' "${strata_cold[@]}" | median)
b=$(printf '%s\n' "${baseline[@]}" | median)
w=$(printf '%s\n' "${warm[@]}" | median)
printf 'packages in the closure     %s (%s)\n' "$count" "${packages[*]}"
printf 'baseline mmdebstrap+umoci   %.2f s  (runs: %s)\n' "$b" "${baseline[*]}"
printf 'strata cold                 %.2f s  (runs: %s)\n' "$s" "${strata_cold[*]}"
printf 'speed-up                    %.1fx  (target >= 3)\n' "$(echo "$b / $s" | bc -l)"
printf 'strata warm rebuild         %.3f s (target < 0.5 s)\n' "$w"
printf 'strata cold peak memory     %s KB\n' "$peak"
