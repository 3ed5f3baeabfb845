#!/usr/bin/env bash
# Files-only image, whole program: strata against
# `buildah from scratch; copy; config; commit` (gzip layers), side by side in
# one run, with the command-line compressors on the same tree, a no-op
# rebuild and peak memory. Prints a table of medians and the ratios the
# targets of issues 2 and 15 are stated in (buildah/strata >= 3 with gzip, >= 8
# with zstd).
#
# Run from the repository root: `bash benches/compare.sh [RUNS]` (RUNS=3).
# Needs buildah, hyperfine, jq, gzip, zstd, pigz and GNU time (installed with
# apt when missing and running as root). Everything it writes lives in one
# temporary folder, removed at the end; buildah runs with the vfs driver and
# its own --root/--runroot in there, so global container storage is untouched.
#
# The tree: ~56 MB in 3,550 regular files COPIED from this host's /usr
# (Python, shared libraries, Perl, Vim, locales, X11, docs): the candidates
# are sorted by path, and 3,550 are taken at an even stride among those under
# a size cap, the smallest cap (in 8 KiB steps) that reaches 56 MB. The same
# host gives the same tree; the script prints a digest of the file list.
set -euo pipefail
runs=${1:-3}
target_files=3550
target_bytes=56000000

[[ -f Cargo.toml && -d benches ]] || {
    echo "run from the repository root: bash benches/compare.sh" >&2
    exit 2
}
root=$(pwd)

missing=()
for tool in buildah hyperfine jq gzip zstd pigz bc; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]]; then
        echo "installing ${missing[*]}" >&2
        apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
            { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
    else
        echo "missing: ${missing[*]} (apt-get install --no-install-recommends them)" >&2
        exit 2
    fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "building strata (release)..." >&2
cargo build --release --quiet
strata="$root/target/release/strata"

# --- the tree -----------------------------------------------------------------
echo "copying the tree..." >&2
mkdir -p "$work/ctx/tree"
(
    cd /usr
    find lib/python3* lib/x86_64-linux-gnu share/perl* share/vim share/i18n share/X11 share/doc \
        -type f -size -1024k -printf '%s %p\n' 2>/dev/null | LC_ALL=C sort -k2
) >"$work/candidates"
awk -v files="$target_files" -v budget="$target_bytes" -v list="$work/list" '
    { size[NR] = $1; name[NR] = substr($0, index($0, " ") + 1) }
    function pick(limit, out,   k, m, i, j) {
        m = 0
        for (k = 1; k <= NR; k++) if (size[k] <= limit) idx[++m] = k
        count = 0; total = 0
        for (i = 0; i < files && i < m; i++) {
            j = idx[int(i * m / files) + 1]
            count++; total += size[j]
            if (out) print name[j] > list
        }
    }
    END {
        for (limit = 32768; limit < 1048576; limit += 8192) { pick(limit, 0); if (total >= budget) break }
        pick(limit, 1)
        printf "%d\n", limit
    }' "$work/candidates" >"$work/cap"
tr '\n' '\0' <"$work/list" | tar -C /usr -cf - --null -T - | tar -C "$work/ctx/tree" -xf -
files=$(find "$work/ctx/tree" -type f | wc -l)
bytes=$(find "$work/ctx/tree" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
list_digest=$(sha256sum <"$work/list" | cut -c1-12)

write_recipe() { # file, extra copy lines
    cat >"$1" <<KDL
name "bench"
version "1.0.0"
base "scratch"
platform "linux/amd64"
user "analyst" uid=10001 gid=10001
layer "tree" {
    copy "tree/" "/opt/tree/"$2
}
entrypoint "/bin/true"
KDL
}
write_recipe "$work/ctx/image.kdl" ""
# The same tree twice in one layer: peak memory should not double with it.
write_recipe "$work/ctx/double.kdl" $'\n    copy "tree/" "/opt/tree2/"'

# --- commands -----------------------------------------------------------------
q() { printf '%q' "$1"; }
W=$(q "$work")
S=$(q "$strata")
cat >"$work/buildah.sh" <<SH
set -euo pipefail
b=(buildah --root $W/buildah/root --runroot $W/buildah/run --storage-driver vfs)
c=\$("\${b[@]}" from scratch)
"\${b[@]}" copy "\$c" $W/ctx/tree /opt/tree >/dev/null
"\${b[@]}" config --user 10001:10001 --entrypoint '["/bin/true"]' "\$c"
"\${b[@]}" commit --quiet --disable-compression=false "\$c" oci:$W/buildah-out:bench >/dev/null
SH
strata_env="STRATA_CACHE=$W/cache SOURCE_DATE_EPOCH=1"
strata_gzip="$strata_env $S build $W/ctx/image.kdl -o $W/out --json >>$W/gzip.jsonl"
strata_zstd="$strata_env $S build $W/ctx/image.kdl -o $W/out --compression zstd --json >>$W/zstd.jsonl"
strata_rebuild="$strata_env $S build $W/ctx/image.kdl -o $W/out --json >>$W/rebuild.jsonl"
clean_strata="rm -rf $W/cache $W/out"
clean_buildah="rm -rf $W/buildah $W/buildah-out"

# Runs a command once (it must succeed: its output is shown if not), then
# RUNS times under hyperfine, `prepare` before each run outside the timing.
declare -A t
measure() { # name, prepare, command
    local name=$1 prepare=$2 cmd=$3
    echo "measuring $name..." >&2
    bash -c "$prepare"
    if ! bash -c "$cmd" >"$work/$name.log" 2>&1; then
        echo "FAILED: $cmd" >&2
        cat "$work/$name.log" >&2
        exit 1
    fi
    rm -f "$work/$name.jsonl"
    hyperfine --runs "$runs" --style none --prepare "$prepare" \
        --export-json "$work/$name.json" "$cmd" >"$work/$name.log" 2>&1 || {
        cat "$work/$name.log" >&2
        exit 1
    }
    t[$name]=$(jq '.results[0].median' "$work/$name.json")
}
# The median of one phase's time over the --json reports of all runs.
phase() { # name, phase
    jq -s "[.[].timings[\"$2\"]] | sort | .[(length / 2 | floor)]" "$work/$1.jsonl"
}
peak_rss() { # recipe, extra args; prints KB
    bash -c "$clean_strata"
    STRATA_CACHE="$work/cache" SOURCE_DATE_EPOCH=1 /usr/bin/time -v -o "$work/time.txt" \
        "$strata" build "$1" -o "$work/out" "${@:2}" >/dev/null 2>&1
    awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt"
}
layer_size() { # jsonl of strata --json reports
    jq -s '.[-1].layers[] | select(.name == "tree") | .size' "$1"
}

measure buildah "$clean_buildah" "bash $W/buildah.sh"
buildah_layer=$(find "$work/buildah-out/blobs/sha256" -type f -printf '%s\n' | sort -n | tail -1)
buildah_gzip=$(jq -r '[.layers[].mediaType] | join(",")' \
    "$work/buildah-out/blobs/sha256/$(jq -r '.manifests[0].digest' "$work/buildah-out/index.json" | cut -d: -f2)")
measure gzip "$clean_strata" "$strata_gzip"
measure zstd "$clean_strata" "$strata_zstd"
# Rebuild: the cache and output of a cold gzip build, nothing changed.
bash -c "$clean_strata; ${strata_gzip%>>*}>$W/cold.json"
measure rebuild ":" "$strata_rebuild"
cached=$(jq -s '[.[].layers[].cached] | all' "$work/rebuild.jsonl")
same_digest=$(jq -rs '[.[].digest] | unique | length == 1' "$work/gzip.jsonl" "$work/cold.json" "$work/rebuild.jsonl")

# The command-line baselines on the tree's own tar.
measure tar "rm -f $W/tree.tar" "tar -C $W/ctx -cf $W/tree.tar tree"
measure gzip_cli ":" "gzip -6 -c $W/tree.tar >$W/tree.tar.gz"
measure pigz_cli ":" "pigz -6 -p 2 -c $W/tree.tar >$W/tree.tar.pigz"
measure zstd_cli ":" "zstd -q -f -3 -T0 $W/tree.tar -o $W/tree.tar.zst"
tar_bytes=$(stat -c %s "$work/tree.tar")

rss_gzip=$(peak_rss "$work/ctx/image.kdl")
rss_zstd=$(peak_rss "$work/ctx/image.kdl" --compression zstd)
rss_double=$(peak_rss "$work/ctx/double.kdl")

# --- report -------------------------------------------------------------------
ratio() { echo "scale=6; $1 / $2" | bc -l; }
verdict() { # value, comparison, target
    if (($(echo "$1 $2 $3" | bc -l))); then echo "ok"; else echo "MISSED"; fi
}
mb() { echo "scale=1; $1 / 1000000" | bc -l; }
gzip_layers=$(phase gzip layers)
zstd_layers=$(phase zstd layers)
r_bg=$(ratio "${t[buildah]}" "${t[gzip]}")
r_bz=$(ratio "${t[buildah]}" "${t[zstd]}")
r_gc=$(ratio "${t[gzip]}" "${t[gzip_cli]}")
r_zc=$(ratio "${t[zstd]}" "${t[zstd_cli]}")
r_glc=$(ratio "$gzip_layers" "${t[gzip_cli]}")
r_zlc=$(ratio "$zstd_layers" "${t[zstd_cli]}")

echo
printf 'tree: %s files, %s MB, copied from /usr (files <= %s KiB, list %s); tar %s MB; %s cores; median of %s runs\n' \
    "$files" "$(mb "$bytes")" "$(($(cat "$work/cap") / 1024))" "$list_digest" "$(mb "$tar_bytes")" "$(nproc)" "$runs"
printf '%-44s %8s   %s\n' "" "seconds" "ratio (target)"
printf '%-44s %8.3f\n' "buildah from/copy/config/commit (gzip)" "${t[buildah]}"
printf '%-44s %8.3f   buildah/strata = %.2f (>= 3: %s)\n' "strata cold, gzip" "${t[gzip]}" "$r_bg" "$(verdict "$r_bg" '>=' 3)"
printf '%-44s %8.3f   buildah/strata = %.2f (>= 8: %s)\n' "strata cold, zstd" "${t[zstd]}" "$r_bz" "$(verdict "$r_bz" '>=' 8)"
printf '%-44s %8.3f   (< 0.2: %s)\n' "strata rebuild, nothing changed" "${t[rebuild]}" "$(verdict "${t[rebuild]}" '<' 0.2)"
printf '%-44s %8.3f\n' "tar -cf of the tree" "${t[tar]}"
printf '%-44s %8.3f   strata-gzip/cli = %.2f (<= 1.5: %s)\n' "gzip -6 of the tar" "${t[gzip_cli]}" "$r_gc" "$(verdict "$r_gc" '<=' 1.5)"
printf '%-44s %8.3f   (2 cores, for reference)\n' "pigz -6 -p 2 of the tar" "${t[pigz_cli]}"
printf '%-44s %8.3f   strata-zstd/cli = %.2f (<= 1.5: %s)\n' "zstd -3 -T0 of the tar" "${t[zstd_cli]}" "$r_zc" "$(verdict "$r_zc" '<=' 1.5)"
printf '%-44s %8.3f   layers/gzip-cli = %.2f (<= 1.5: %s)\n' "strata gzip, layers phase alone" "$gzip_layers" "$r_glc" "$(verdict "$r_glc" '<=' 1.5)"
printf '%-44s %8.3f   layers/zstd-cli = %.2f (<= 1.5: %s)\n' "strata zstd, layers phase alone" "$zstd_layers" "$r_zlc" "$(verdict "$r_zlc" '<=' 1.5)"
echo
printf 'peak RSS, strata cold gzip:  %s KB (zstd: %s KB; the tree twice in one layer, gzip: %s KB)\n' \
    "$rss_gzip" "$rss_zstd" "$rss_double"
printf 'tree layer: strata gzip %s MB, strata zstd %s MB, buildah %s MB (%s), gzip -6 %s MB, zstd -3 %s MB\n' \
    "$(mb "$(layer_size "$work/gzip.jsonl")")" "$(mb "$(layer_size "$work/zstd.jsonl")")" "$(mb "$buildah_layer")" \
    "$buildah_gzip" "$(mb "$(stat -c %s "$work/tree.tar.gz")")" "$(mb "$(stat -c %s "$work/tree.tar.zst")")"
printf 'rebuild: every layer cached: %s; same digest as the cold builds: %s\n' "$cached" "$same_digest"
for phase_name in $(jq -r '.timings | keys[]' <(jq -s '.[0]' "$work/gzip.jsonl")); do
    printf '%s=%.3f ' "$phase_name" "$(phase gzip "$phase_name")"
done | sed 's/^/strata cold gzip phases (s): /'
echo
