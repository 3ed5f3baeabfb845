#!/usr/bin/env bash
# Registry transfers, strata against skopeo side by side in one run, each
# against a fresh reference registry (docker-registry) on loopback:
#   push:    `strata push LAYOUT:TAG DEST` vs `skopeo copy oci:LAYOUT:TAG docker://DEST`
#            of the same layout (examples/python); strata also pushes the
#            image's SBOM artifact and referrers tag, which skopeo leaves
#            behind, so it is timed on a `--sbom none` build of the image too;
#   re-push: strata again to the same repository, every blob present;
#   pull:    a 4-layer base (16 MiB of noise per layer) pulled cold by
#            `strata build` on it vs `skopeo copy docker://… oci:…`.
# Run from the repository root: `bash benches/push.sh [RUNS]`.
set -euo pipefail
source benches/common.sh
registry_pid=
stop_registry() { if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null || true; registry_pid=; fi; }
trap 'stop_registry; rm -rf "$work"' EXIT
export STRATA_CACHE="$work/cache" SOURCE_DATE_EPOCH=1

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr="127.0.0.1:$port"
# A fresh, empty registry: nothing either tool pushes is there before it.
start_registry() {
    stop_registry
    rm -rf "$work/registry"
    mkdir -p "$work/registry"
    printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n' \
        "$work/registry/data" "$addr" > "$work/registry/config.yml"
    docker-registry serve "$work/registry/config.yml" >/dev/null 2>&1 &
    registry_pid=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.05; done
}


cp -r "$root/examples/python" "$work/python"
"$strata" build "$work/python/image.kdl" -o "$work/layout" 2>/dev/null
# The same image without its SBOM artifact: what skopeo copies.
"$strata" build "$work/python/image.kdl" -o "$work/bare" --sbom none 2>/dev/null
tag=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])' "$work/layout/index.json")
size=$(du -sb "$work/layout/blobs" | cut -f1)

strata_push=(); bare_push=(); skopeo_push=(); repush=()
for i in $(seq "$runs"); do
    start_registry
    strata_push+=("$(elapsed "$strata" push "$work/layout:$tag" "$addr/bench/python:$tag")")
    repush+=("$(elapsed "$strata" push "$work/layout:$tag" "$addr/bench/python:again")")
    start_registry
    bare_push+=("$(elapsed "$strata" push "$work/bare:$tag" "$addr/bench/python:$tag")")
    start_registry
    skopeo_push+=("$(elapsed skopeo copy --dest-tls-verify=false "oci:$work/layout:$tag" "docker://$addr/bench/python:$tag")")
done

# A base of several layers, pushed once per run to a fresh registry.
mkdir -p "$work/base"
{
    echo 'name "noise"'; echo 'version "1"'; echo 'base "scratch"'; echo 'tre #false'
    for n in 1 2 3 4; do
        head -c 16M /dev/urandom > "$work/base/noise$n.bin"
        echo "layer \"l$n\" {"; echo "    copy \"noise$n.bin\" \"/opt/noise$n.bin\""; echo "}"
    done
} > "$work/base/image.kdl"
"$strata" build "$work/base/image.kdl" -o "$work/base-out" 2>/dev/null
base_digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$work/base-out/index.json")
mkdir -p "$work/child"
printf 'name "child"\nversion "1"\nbase "%s/bench/noise@%s"\ntre #false\n' "$addr" "$base_digest" > "$work/child/image.kdl"

strata_pull=(); skopeo_pull=()
for i in $(seq "$runs"); do
    start_registry
    "$strata" push "$work/base-out:1" "$addr/bench/noise:1" >/dev/null 2>&1
    rm -rf "$work/pull-cache" "$work/child-out" "$work/skopeo-out"
    strata_pull+=("$(STRATA_CACHE="$work/pull-cache" elapsed "$strata" build "$work/child/image.kdl" -o "$work/child-out")")
    skopeo_pull+=("$(elapsed skopeo copy --src-tls-verify=false "docker://$addr/bench/noise:1" "oci:$work/skopeo-out:1")")
done

sp=$(printf '%s\n' "${strata_push[@]}" | median)
bp=$(printf '%s\n' "${bare_push[@]}" | median)
kp=$(printf '%s\n' "${skopeo_push[@]}" | median)
rp=$(printf '%s\n' "${repush[@]}" | median)
sl=$(printf '%s\n' "${strata_pull[@]}" | median)
kl=$(printf '%s\n' "${skopeo_pull[@]}" | median)
printf 'layout pushed               examples/python, %s bytes of blobs\n' "$size"
printf 'skopeo copy (push)          %.3f s  (runs: %s)\n' "$kp" "${skopeo_push[*]}"
printf 'strata push (image + SBOM)  %.3f s  (runs: %s)\n' "$sp" "${strata_push[*]}"
printf 'strata push (image only)    %.3f s  (runs: %s)\n' "$bp" "${bare_push[*]}"
printf 'push ratio strata/skopeo    %.2f with the SBOM, %.2f like for like  (target <= 1.0)\n' "$(echo "$sp / $kp" | bc -l)" "$(echo "$bp / $kp" | bc -l)"
printf 'strata re-push, all present %.3f s  (target < 0.1 s; runs: %s)\n' "$rp" "${repush[*]}"
printf 'skopeo copy (pull 4 layers) %.3f s  (runs: %s)\n' "$kl" "${skopeo_pull[*]}"
printf 'strata build on that base   %.3f s  (cold cache; runs: %s)\n' "$sl" "${strata_pull[*]}"
printf 'pull ratio strata/skopeo    %.2f\n' "$(echo "$sl / $kl" | bc -l)"
