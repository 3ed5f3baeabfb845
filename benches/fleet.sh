#!/usr/bin/env bash
# A fleet of fresh CI runners sharing one registry cache, on the scientific
# stack (python3-pandas python3-scipy python3-matplotlib python3-sklearn),
# against a docker-registry on loopback, side by side in one run:
#   - runner A: empty local cache, builds and pushes with `--cache`;
#   - runner B: another empty local cache, same recipe and lock, pushes to
#     another repository with `--format none` (layers mounted, not
#     downloaded);
#   - runner C: the same as B without the registry cache (what a fresh
#     runner costs without it);
#   - runner D: empty local cache, `--cache`, and a local output: the
#     layers are downloaded from the registry and checked;
# and the bytes each moved. Run from the repository root:
# `bash benches/fleet.sh`. Needs docker-registry, jq and curl.
set -euo pipefail
source benches/common.sh

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
cat > "$work/registry/config.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/registry/config.yml" >/dev/null 2>&1 &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

packages=(python3-pandas python3-scipy python3-matplotlib python3-sklearn)
debian_recipe "$work/recipe" science
STRATA_CACHE="$work/lock-cache" "$strata" lock "$work/recipe/image.kdl" >/dev/null 2>&1
cache="127.0.0.1:$port/fleet/strata-cache"

runner() { # NAME ARGS... → seconds
    local t0
    t0=$(now)
    STRATA_CACHE="$work/cache-$1" SOURCE_DATE_EPOCH=1 "$strata" build "$work/recipe/image.kdl" \
        --locked --json "${@:2}" > "$work/$1.json" 2>/dev/null
    echo "$(now) - $t0" | bc
}
a=$(runner a -o "$work/out-a" --cache "$cache" --push "127.0.0.1:$port/fleet/science:a")
b=$(runner b --format none --cache "$cache" --push "127.0.0.1:$port/fleet/science-b:b")
c=$(runner c -o "$work/out-c" --push "127.0.0.1:$port/fleet/science-c:c")
d=$(runner d -o "$work/out-d" --cache "$cache")

count() { jq "[.layers[] | select(.$2 == true)] | length" "$work/$1.json"; }
printf 'packages                                 %s\n' "$(grep -c '^    package ' "$work/recipe/image.lock")"
printf 'runner A (empty cache, fills the registry) %.2f s, %s layers built\n' "$a" "$(jq '[.layers[] | select(.cached == false)] | length' "$work/a.json")"
printf 'runner B (empty cache, --cache)          %.2f s, %s layers compressed, %s left in the registry and mounted (%s), uploaded %s bytes\n' \
    "$b" "$(jq '[.layers[] | select(.cached == false)] | length' "$work/b.json")" "$(count b lazy)" \
    "$(jq -r '.pushed[0].mounted' "$work/b.json") mounts" "$(jq -r '.pushed[0].uploadedBytes' "$work/b.json")"
printf 'runner C (empty cache, no --cache)       %.2f s\n' "$c"
printf 'runner D (empty cache, --cache, -o DIR)  %.2f s, %s layers compressed, %s downloaded (%s bytes), packages fetched: %s\n' \
    "$d" "$(jq '[.layers[] | select(.cached == false)] | length' "$work/d.json")" "$(count d fetched)" \
    "$(jq '[.layers[] | select(.fetched == true) | .size] | add // 0' "$work/d.json")" \
    "$(find "$work/cache-d/blobs/sha256" -type f -size +0 | while read -r f; do grep -q "$(basename "$f")" "$work/recipe/image.lock" && echo x; done | wc -l)"
same=yes
for r in b c d; do [[ $(jq -r .digest "$work/a.json") == $(jq -r .digest "$work/$r.json") ]] || same=NO; done
printf 'same image (A, B, C, D)                  %s\n' "$same"
printf 'B against C                              %.1fx faster (target: B under 2 s)\n' "$(echo "$c / $b" | bc -l)"
