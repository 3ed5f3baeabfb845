#!/usr/bin/env bash
# Builds the distribution binary: one static, stripped `strata` for
# x86_64-unknown-linux-gnu with glibc linked in (`+crt-static`), DNS
# answered in Rust (no NSS modules at run time) and TLS roots read from the
# host's usual places (Debian's and RHEL's bundles, SSL_CERT_FILE/DIR).
#
#   bash scripts/dist.sh            → target/dist/strata
#
# The target is named explicitly so that `+crt-static` reaches the binary
# only, not build scripts and proc-macros.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --locked --profile dist --features dist --target "$target" --bin strata
mkdir -p target/dist
cp "target/$target/dist/strata" target/dist/strata
ls -l target/dist/strata
# The binary strata's own image (examples/strata) is built from.
cp target/dist/strata examples/strata/strata
