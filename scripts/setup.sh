#!/usr/bin/env bash
# bitparity setup: installs the Debian 12 packages the project needs (idempotent,
# non-interactive), configures and builds with Ninja in Release mode (binaries in
# build/bin/), then does what the first argument asks:
#   deps   install packages only
#   build  install and build (default)
#   run    install, build, and run the main job on a built-in default
#   test   install, build, and run every test (ctest)
set -euo pipefail

mode="${1:-build}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BITPARITY_BUILD_DIR:-$root/build}"

packages=(
  cmake ninja-build g++ clang pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libboost-filesystem-dev libopenblas-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev prometheus-cpp-dev libssl-dev openssl
  python3-grpcio python3-protobuf chromium libclang-rt-14-dev
)

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    echo "setup: all ${#packages[@]} Debian packages present"
    return
  fi
  echo "setup: installing ${missing[*]}"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# A unity build (16 files per batch) parses the heavy gRPC and GoogleTest headers once per
# batch, not once per file (8 min from clean on 2 Zen 5 cores); files with their own ISA
# flags (the SIMD kernels) are never batched.
build() {
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 ${BITPARITY_CMAKE_ARGS:-}
  cmake --build "$build_dir" -j "$(nproc)"
}

# OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to slow kernels.
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}"

case "$mode" in
  deps) install_packages ;;
  build) install_packages; build ;;
  run)
    install_packages; build
    exec "$root/scripts/main_job.sh" "$build_dir"
    ;;
  test)
    install_packages; build
    cd "$build_dir"
    ctest --output-on-failure -j "$(nproc)" --timeout 900
    ;;
  *) echo "usage: $0 [deps|build|run|test]" >&2; exit 2 ;;
esac
