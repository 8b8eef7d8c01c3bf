#!/usr/bin/env bash
# Cross-builds, on a Linux x64 host, the Linux binaries that have no native build here:
#
#   linux-arm64-gnu   aarch64-unknown-linux-gnu, linked against glibc $FERROSSH_GLIBC (default 2.17)
#   linux-x64-musl    x86_64-unknown-linux-musl
#   linux-arm64-musl  aarch64-unknown-linux-musl (only when named)
#
# with cargo-zigbuild (`napi build -x`: zig is the C compiler and linker, so aws-lc-sys builds
# without a cross gcc, and a `.2.17` suffix on the target pins the glibc symbol versions).
# Each result lands in the repository root as ferrossh.<platform>.node, the file index.js loads,
# and is checked with `file` (architecture), readelf/objdump (musl loader, highest GLIBC_ symbol).
#
# Usage: scripts/cross-build.sh [--check] [platform ...]
#   (no platform)  linux-arm64-gnu linux-x64-musl
#   --check        set up and verify the toolchain only (rustup targets, zig, cargo-zigbuild); build nothing
# Environment: FERROSSH_GLIBC (glibc version for -gnu targets; "none" builds against zig's default),
#              CARGO_BUILD_JOBS (passed through to cargo).
set -euo pipefail

cd "$(dirname "$0")/.."

check_only=0
platforms=()
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    linux-arm64-gnu|linux-x64-musl|linux-arm64-musl) platforms+=("$arg") ;;
    *) echo "cross-build: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#platforms[@]} -gt 0 ] || platforms=(linux-arm64-gnu linux-x64-musl)

glibc="${FERROSSH_GLIBC:-2.17}"

triple_of() {
  case "$1" in
    linux-arm64-gnu) echo aarch64-unknown-linux-gnu ;;
    linux-x64-musl) echo x86_64-unknown-linux-musl ;;
    linux-arm64-musl) echo aarch64-unknown-linux-musl ;;
  esac
}

log() { printf '\n== %s\n' "$*"; }

# ---- toolchain ------------------------------------------------------------------------------

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "cross-build: expects a Linux x86_64 host, this is $(uname -s)-$(uname -m)" >&2
  exit 1
fi

log "rust targets"
targets=()
for p in "${platforms[@]}"; do targets+=("$(triple_of "$p")"); done
rustup target add "${targets[@]}"

log "zig"
# cargo-zigbuild uses `zig` from PATH, else `python3 -m ziglang` (the ziglang wheel from PyPI).
if command -v zig >/dev/null 2>&1; then
  echo "zig $(zig version) ($(command -v zig))"
elif python3 -m ziglang version >/dev/null 2>&1; then
  echo "zig $(python3 -m ziglang version) (python3 -m ziglang)"
else
  python3 -m pip install --quiet ziglang
  echo "zig $(python3 -m ziglang version) (python3 -m ziglang, just installed)"
fi

log "cargo-zigbuild"
if ! command -v cargo-zigbuild >/dev/null 2>&1; then
  # The PyPI wheel is a prebuilt binary; compiling it with cargo takes minutes.
  python3 -m pip install --quiet cargo-zigbuild || cargo install --locked cargo-zigbuild
fi
cargo-zigbuild --version

log "napi cli"
if [ ! -x node_modules/.bin/napi ]; then
  echo "cross-build: node_modules/.bin/napi is missing: run 'npm ci' first" >&2
  exit 1
fi
node_modules/.bin/napi --version

for tool in file readelf objdump; do
  command -v "$tool" >/dev/null 2>&1 || { echo "cross-build: '$tool' is missing (apt-get install file binutils)" >&2; exit 1; }
done

if [ "$check_only" = 1 ]; then
  log "toolchain ready for: ${platforms[*]} (--check: nothing built)"
  exit 0
fi

# ---- build ----------------------------------------------------------------------------------

verify() {
  local platform="$1" node_file="ferrossh.$1.node" desc
  [ -f "$node_file" ] || { echo "cross-build: $node_file was not produced" >&2; return 1; }
  desc="$(file -b "$node_file")"
  echo "$node_file: $desc"
  case "$platform" in
    linux-arm64-*) [[ "$desc" == *"ELF 64-bit LSB shared object, ARM aarch64"* ]] ;;
    linux-x64-*) [[ "$desc" == *"ELF 64-bit LSB shared object, x86-64"* ]] ;;
  esac || { echo "cross-build: $node_file has the wrong architecture" >&2; return 1; }
  case "$platform" in
    *-musl)
      # a musl .node must ask for musl's libc.so, not glibc's libc.so.6
      local needed
      needed="$(readelf -d "$node_file" | grep NEEDED || true)"
      echo "$needed"
      if [[ "$needed" == *"libc.so.6"* ]]; then
        echo "cross-build: $node_file links glibc's libc.so.6, not musl" >&2
        return 1
      fi
      ;;
    *-gnu)
      local newest
      newest="$(objdump -T "$node_file" | grep -o 'GLIBC_[0-9.]*' | sort -u -V | tail -n 1)"
      echo "$node_file: newest glibc symbol version $newest"
      if [ "$glibc" != none ] && [ "$(printf '%s\n%s\n' "${newest#GLIBC_}" "$glibc" | sort -V | tail -n 1)" != "$glibc" ]; then
        echo "cross-build: $node_file needs $newest, more than the glibc $glibc it was built for" >&2
        return 1
      fi
      ;;
  esac
}

for platform in "${platforms[@]}"; do
  triple="$(triple_of "$platform")"
  napi_target="$triple"
  if [[ "$platform" == *-gnu && "$glibc" != none ]]; then
    napi_target="$triple.$glibc"
  fi
  log "build $platform ($napi_target)"
  # Same flags as `npm run build:native`, so the regenerated index.js / index.d.ts are identical.
  node_modules/.bin/napi build --platform --release \
    --manifest-path crates/node/Cargo.toml --package ferrossh-node \
    --output-dir . --js index.js --dts index.d.ts \
    --target "$napi_target" -x
  verify "$platform"
done

log "done: ${platforms[*]}"
