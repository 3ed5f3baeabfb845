#!/usr/bin/env bash
# The scientific stack (python3-pandas python3-scipy python3-matplotlib
# python3-sklearn on a scratch base), side by side in one run:
#   - cold build: strata (default layers), strata `layers 1`, strata
#     without byte-code and with zstd, and the fair baseline
#     mmdebstrap --variant=extract + `umoci raw add-layer`;
#   - warm, locked, no-op rebuild;
#   - what one upgrade changes: the compressed bytes of the layers whose
#     digest changes (to push and pull again), with `layers 1` and the
#     default, for one package outside the heaviest sources and for glibc.
# An upgrade is made from two real locks of the same day: the release's
# versions (`updates=#false security=#false`) and the current ones; the
# upgraded lock is the release lock with one source's packages taken from
# the current lock.
# Run from the repository root: `bash benches/layers.sh [RUNS]` (RUNS=1:
# each cold build downloads ~220 MB).
set -euo pipefail
source benches/common.sh
runs=${1:-1}

packages=(python3-pandas python3-scipy python3-matplotlib python3-sklearn)
build() { # DIR CACHE [BUILD-ARGS...]
    STRATA_CACHE="$2" SOURCE_DATE_EPOCH=1 "$strata" build "$1/image.kdl" -o "$1/out" "${@:3}" >/dev/null 2>&1
}
# Compressed size of the image's layers, and of those not in the other image.
layer_sizes() { # OUT
    local manifest
    manifest=$(jq -r '.manifests[0].digest' "$1/index.json" | sed 's/sha256://')
    jq -r '.layers[] | "\(.digest) \(.size)"' "$1/blobs/sha256/$manifest"
}
changed_bytes() { # OLD-OUT NEW-OUT
    join -v 2 <(layer_sizes "$1" | sort) <(layer_sizes "$2" | sort) | awk '{s+=$2} END {print s+0}'
}
total_bytes() { layer_sizes "$1" | awk '{s+=$2} END {print s}'; }

# Locks: the current one, and the release's.
debian_recipe "$work/current" science "" ""
debian_recipe "$work/release" science "updates=#false security=#false" ""
STRATA_CACHE="$work/cache" "$strata" lock "$work/current/image.kdl" >/dev/null 2>&1
STRATA_CACHE="$work/cache" "$strata" lock "$work/release/image.kdl" >/dev/null 2>&1
count=$(grep -c '^    package ' "$work/current/image.lock")

# Cold builds, side by side.
strata_cold=()
strata_one=()
strata_lean=()
baseline=()
for i in $(seq "$runs"); do
    rm -rf "$work/cold-cache" "$work/current/out"
    t0=$(now)
    build "$work/current" "$work/cold-cache"
    strata_cold+=("$(echo "$(now) - $t0" | bc)")

    debian_recipe "$work/one" science "" "layers 1"
    cp "$work/current/image.lock" "$work/one/image.lock"
    rm -rf "$work/cold-cache" "$work/one/out"
    t0=$(now)
    build "$work/one" "$work/cold-cache"
    strata_one+=("$(echo "$(now) - $t0" | bc)")

    # What the CPU spends beyond the baseline's work: byte-code (which
    # `--variant=extract` does not compile) and gzip. Without both:
    debian_recipe "$work/lean" science "" "bytecode #false"
    cp "$work/current/image.lock" "$work/lean/image.lock"
    rm -rf "$work/cold-cache" "$work/lean/out"
    t0=$(now)
    build "$work/lean" "$work/cold-cache" --compression zstd
    strata_lean+=("$(echo "$(now) - $t0" | bc)")

    baseline+=("$(baseline_debian)")
done

# The cache last held the `layers 1` build: one build puts the default
# layers back before the no-op rebuilds are timed.
build "$work/current" "$work/cold-cache"
# Right after a build, the files it wrote are hashed again: the cache keeps
# a file's stamp only once its ctime is 2 s old (spec/cache.md). Timed once
# that way, then settled.
t0=$(now)
build "$work/current" "$work/cold-cache"
right_after=$(echo "$(now) - $t0" | bc)
sleep 3
warm=()
for i in 1 2 3; do
    t0=$(now)
    build "$work/current" "$work/cold-cache"
    warm+=("$(echo "$(now) - $t0" | bc)")
done

# Sources whose packages differ between the two locks, heaviest first.
sources_of() { # LOCK → "SOURCE SIZE" per package line
    sed -n 's/^    package .* path="\([^"]*\)" size=\([0-9]*\).*/\1 \2/p' "$1" |
        awk '{n=split($1,p,"/"); print p[n-1], $2}'
}
changed_sources=$( { diff <(grep '^    package ' "$work/release/image.lock" | sort) \
    <(grep '^    package ' "$work/current/image.lock" | sort) || true; } |
    sed -n 's/^> .* path="\([^"]*\)".*/\1/p' | awk -F/ '{print $(NF-1)}' | sort -u)
# The heaviest sources have their own layer; the upgrade that matters for
# the target is one in a shared layer.
heavy=$(sources_of "$work/current/image.lock" | awk '{s[$1]+=$2} END {for (k in s) print s[k], k}' |
    sort -rn | awk 'NR <= 10 {print $2}')
pick=""
heavy_pick=""
for s in $changed_sources; do
    if grep -qx "$s" <<<"$heavy"; then
        [[ -z $heavy_pick ]] && heavy_pick=$s
    elif [[ $s != glibc && -z $pick ]]; then
        pick=$s
    fi
done

upgrade() { # SOURCE LAYERS-LINE → "changed total"
    local dir=$work/upgrade
    rm -rf "$dir"
    debian_recipe "$dir/before" science "" "$2"
    debian_recipe "$dir/after" science "" "$2"
    # Before: the release's packages of SOURCE; after: the current ones.
    awk -v src="/$1/" -v rel="$work/release/image.lock" '
        BEGIN { while ((getline l < rel) > 0) if (l ~ /^    package / && index(l, src)) {
                    split(l, f, "\""); old[f[2]] = l } }
        /^    package / && index($0, src) { split($0, f, "\""); if (f[2] in old) { print old[f[2]]; next } }
        { print }' "$work/current/image.lock" > "$dir/before/image.lock"
    cp "$work/current/image.lock" "$dir/after/image.lock"
    build "$dir/before" "$work/cold-cache"
    build "$dir/after" "$work/cold-cache"
    echo "$(changed_bytes "$dir/before/out" "$dir/after/out") $(total_bytes "$dir/after/out")"
}
report_upgrade() { # SOURCE
    local one many
    one=$(upgrade "$1" "layers 1")
    many=$(upgrade "$1" "")
    printf 'upgrade of %-18s layers 1: %s of %s bytes (%.1f %%); default: %s of %s bytes (%.1f %%)\n' \
        "$1" ${one% *} ${one#* } "$(echo "100 * ${one% *} / ${one#* }" | bc -l)" \
        ${many% *} ${many#* } "$(echo "100 * ${many% *} / ${many#* }" | bc -l)"
}

s=$(printf '%s\n' "${strata_cold[@]}" | median)
o=$(printf '%s\n' "${strata_one[@]}" | median)
l=$(printf '%s\n' "${strata_lean[@]}" | median)
b=$(printf '%s\n' "${baseline[@]}" | median)
w=$(printf '%s\n' "${warm[@]}" | median)
printf 'packages in the closure       %s (%s)\n' "$count" "${packages[*]}"
printf 'layers (default)              %s\n' "$(layer_sizes "$work/current/out" | wc -l)"
printf 'baseline mmdebstrap+umoci     %.2f s  (runs: %s)\n' "$b" "${baseline[*]}"
printf 'strata cold, default layers   %.2f s  (runs: %s)\n' "$s" "${strata_cold[*]}"
printf 'strata cold, layers 1         %.2f s  (runs: %s)\n' "$o" "${strata_one[*]}"
printf 'strata cold, no byte-code, zstd %.2f s  (runs: %s)\n' "$l" "${strata_lean[*]}"
printf 'speed-up against the baseline %.1fx  (target >= 4; no byte-code and zstd: %.1fx)\n' "$(echo "$b / $s" | bc -l)" "$(echo "$b / $l" | bc -l)"
printf 'warm no-op rebuild            %.3f s  (runs: %s; target < 0.3 s; right after a build: %.3f s)\n' "$w" "${warm[*]}" "$right_after"
printf 'sources upgraded since the release: %s\n' "$(echo $changed_sources)"
[[ -n $pick ]] && report_upgrade "$pick"
[[ -n $heavy_pick ]] && report_upgrade "$heavy_pick"
grep -qx glibc <<<"$changed_sources" && report_upgrade glibc
exit 0
