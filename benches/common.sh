# What the whole-program benchmarks share; `source benches/common.sh` first
# thing, from the repository root, with `set -euo pipefail` already on. It
# sets `runs` (the script's first argument, default 3), `root`, a scratch
# `work` folder (removed on exit unless the script sets its own trap, which
# must then remove it too) and `strata`, a fresh release build.
runs=${1:-3}
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet
strata="$root/target/release/strata"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# Seconds `"$@"` takes, its output discarded.
elapsed() { local t0; t0=$(now); "$@" >/dev/null 2>&1; echo "$(now) - $t0" | bc; }
# The fair baseline for Debian packages, timed: `mmdebstrap --variant=extract`
# of the `packages` array, then `umoci raw add-layer` of the tree into a new
# OCI layout. Prints the seconds it took.
baseline_debian() {
    local t0
    rm -rf "$work/rootfs" "$work/oci"
    t0=$(now)
    mmdebstrap --quiet --variant=extract --include="$(IFS=,; echo "${packages[*]}")" \
        --skip=cleanup/apt/lists bookworm "$work/rootfs" http://deb.debian.org/debian >/dev/null 2>&1
    umoci init --layout "$work/oci" >/dev/null
    umoci new --image "$work/oci:bench" >/dev/null
    umoci raw add-layer --image "$work/oci:bench" <(tar -C "$work/rootfs" -cf - .) >/dev/null
    echo "$(now) - $t0" | bc
    rm -rf "$work/rootfs" "$work/oci"
}

# Writes DIR/image.kdl: the `packages` array from bookworm on a scratch base,
# named NAME, with PROPERTIES on the `debian` node and LINE in its block.
# `debian_recipe DIR NAME [PROPERTIES] [LINE]`.
debian_recipe() {
    mkdir -p "$1"
    cat > "$1/image.kdl" <<KDL
name "$2"
version "1"
base "scratch"
platform "linux/amd64"
tre #false
debian "bookworm" ${3:+$3 }{
    ${4:-}
    install $(printf '"%s" ' "${packages[@]}")
}
KDL
}
