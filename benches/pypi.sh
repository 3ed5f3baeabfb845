#!/usr/bin/env bash
# Python packages from PyPI, whole program, side by side in one run:
#
# 1. cold: `uv pip install --target DIR --python-platform x86_64-manylinux_2_36
#    --python-version 3.11` of numpy, pandas and scikit-learn followed by
#    `tar` + `gzip -6` (and + `zstd -3`) of DIR, against `strata build` of a
#    recipe installing the same requirements onto Debian 12's python3, every
#    cache empty. strata's cold build also resolves, downloads and lays out
#    Debian's python3 (~100 packages), which uv is not asked to do, so a
#    second figure starts strata with the Debian part cached and only PyPI
#    cold: the like-for-like comparison, with gzip and with zstd.
# 2. warm: a locked no-op rebuild (`--locked`, everything cached).
# 3. import time of pandas on a read-only root without `.pyc` (what strata
#    ships) and with unchecked-hash `.pyc`s compiled into a copy of the tree.
# 4. peak memory of a build whose lock holds the torch wheel (~900 MB).
#
# Run from the repository root: `bash benches/pypi.sh [RUNS]` (RUNS=3).
# Needs uv (`.ci/run` installs it into target/tools-venv), bwrap, zstd, jq,
# GNU time, and network to PyPI and the Debian mirror.
set -euo pipefail
source benches/common.sh
uv=${STRATA_UV:-$root/target/tools-venv/bin/uv}
requirements=$'numpy\npandas\nscikit-learn\n'

recipe() {
    cat <<KDL
name "pypi"
base "scratch"
platform "linux/amd64"
tre #false
debian "bookworm" {
    install "python3"
}
$1
KDL
}
mkdir -p "$work/app" "$work/debian"
printf '%s' "$requirements" >"$work/app/requirements.txt"
recipe 'python { requirements "requirements.txt"; }' >"$work/app/image.kdl"
recipe '' >"$work/debian/image.kdl"

uv_cold() {
    local dir=$1
    rm -rf "$dir" "$dir.cache"
    UV_CACHE_DIR="$dir.cache" "$uv" pip install --quiet --target "$dir/site" \
        --python-platform x86_64-manylinux_2_36 --python-version 3.11 -r "$work/app/requirements.txt"
}
strata_cold() {
    rm -rf "$work/cache" "$work/app/image.lock" "$work/out"
    STRATA_CACHE="$work/cache" "$strata" build "$work/app/image.kdl" -o "$work/out" --quiet
}
# PyPI cold, Debian cached; "$@": more build options (a compression).
strata_pypi_cold() {
    rm -rf "$work/cache" "$work/app/image.lock" "$work/out"
    STRATA_CACHE="$work/cache" "$strata" build "$work/debian/image.kdl" -o "$work/debian/out" --quiet "$@"
    local t0
    t0=$(now)
    STRATA_CACHE="$work/cache" "$strata" build "$work/app/image.kdl" -o "$work/out" --quiet "$@"
    echo "$(now) - $t0" | bc
}

declare -a uv_gzip uv_zstd strata_all strata_pypi strata_zstd warm
for _ in $(seq "$runs"); do
    t0=$(now)
    uv_cold "$work/uv"
    t1=$(now)
    tar -C "$work/uv/site" -cf - . | gzip -6 >"$work/uv.tar.gz"
    t2=$(now)
    tar -C "$work/uv/site" -cf - . | zstd -q -3 >"$work/uv.tar.zst"
    t3=$(now)
    uv_gzip+=("$(echo "$t2 - $t0" | bc)")
    uv_zstd+=("$(echo "($t1 - $t0) + ($t3 - $t2)" | bc)")
    strata_all+=("$(elapsed strata_cold)")
    strata_zstd+=("$(strata_pypi_cold --compression zstd)")
    strata_pypi+=("$(strata_pypi_cold)")
    warm+=("$(elapsed env STRATA_CACHE="$work/cache" "$strata" build "$work/app/image.kdl" -o "$work/out" --locked --quiet)")
done
med() { printf '%s\n' "$@" | median; }
echo "cold, numpy + pandas + scikit-learn, median of $runs:"
printf '  uv pip install --target + tar + gzip -6   %6.2f s  (%s MB)\n' "$(med "${uv_gzip[@]}")" "$(($(stat -c %s "$work/uv.tar.gz") / 1000000))"
printf '  uv pip install --target + tar + zstd -3   %6.2f s  (%s MB)\n' "$(med "${uv_zstd[@]}")" "$(($(stat -c %s "$work/uv.tar.zst") / 1000000))"
printf '  strata build, Debian python3 + PyPI cold   %6.2f s\n' "$(med "${strata_all[@]}")"
printf '  strata build, PyPI cold (Debian cached)    %6.2f s  (image %s MB)\n' "$(med "${strata_pypi[@]}")" \
    "$(($(jq '[.layers[].size] | add' "$work/out/blobs/sha256/$(jq -r '.manifests[0].digest' "$work/out/index.json" | cut -d: -f2)") / 1000000))"
printf '  ratio strata (PyPI cold) / uv+tar+gzip     %6.2f\n' "$(echo "$(med "${strata_pypi[@]}") / $(med "${uv_gzip[@]}")" | bc -l)"
printf '  strata build --compression zstd, PyPI cold %6.2f s  (ratio to uv+tar+zstd %.2f)\n' "$(med "${strata_zstd[@]}")" \
    "$(echo "$(med "${strata_zstd[@]}") / $(med "${uv_zstd[@]}")" | bc -l)"
printf '  warm locked no-op rebuild                  %6.3f s\n' "$(med "${warm[@]}")"

# Import time: the image as strata writes it (no .pyc), and a copy with
# unchecked-hash .pyc compiled by a CPython 3.11 (the magic number is the
# image's), each on a read-only root.
rootfs="$work/root"
mkdir -p "$rootfs"
manifest="$work/out/blobs/sha256/$(jq -r '.manifests[0].digest' "$work/out/index.json" | cut -d: -f2)"
for layer in $(jq -r '.layers[].digest' "$manifest" | cut -d: -f2); do
    tar -xf "$work/out/blobs/sha256/$layer" -C "$rootfs"
done
chmod -R u+w "$rootfs"
cp -a "$rootfs" "$work/root-pyc"
python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash "$work/root-pyc/opt/venv/lib/python3.11/site-packages" >/dev/null || true
import_time() {
    local tree=$1
    bwrap --ro-bind "$tree" / --proc /proc --dev /dev --tmpfs /tmp --unshare-all \
        /opt/venv/bin/python -c 'import pandas' >/dev/null 2>&1
    for _ in $(seq 5); do
        elapsed bwrap --ro-bind "$tree" / --proc /proc --dev /dev --tmpfs /tmp --unshare-all \
            /opt/venv/bin/python -c 'import pandas'
    done | median
}
nopyc=$(import_time "$rootfs")
pyc=$(import_time "$work/root-pyc")
printf 'import pandas, read-only root, median of 5: no .pyc %.3f s, .pyc %.3f s (%.2fx)\n' "$nopyc" "$pyc" "$(echo "$nopyc / $pyc" | bc -l)"

# Peak memory with a torch wheel in the set: a lock file naming torch's
# wheel (and nothing else: a lock file is installed as it is).
mkdir -p "$work/torch"
"$uv" pip compile --quiet --no-header --format pylock.toml --no-deps \
    --python-platform x86_64-manylinux_2_36 --python-version 3.11 - <<<'torch' >"$work/torch/pylock.toml"
recipe 'python { lock-file "pylock.toml"; }' >"$work/torch/image.kdl"
rss=$( { /usr/bin/time -f '%M' env STRATA_CACHE="$work/cache" "$strata" build "$work/torch/image.kdl" -o "$work/torch/out" --quiet; } 2>&1 | tail -1)
printf 'peak memory, build with the torch wheel (%s MB): %s MB\n' \
    "$(($(grep -m1 -o 'size = [0-9]*' "$work/torch/pylock.toml" | cut -d' ' -f3) / 1000000))" "$((rss / 1024))"
