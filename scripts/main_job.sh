#!/usr/bin/env bash
# The main job on a built-in default (the README's first quick-start command runs
# this after building): `bitparity demo` starts two bitnet.v1 servers on free
# loopback ports over a small model that bitnet-synth writes on first use, compares
# them on the built-in prompt set, and writes the reports (HTML, JSON, Markdown,
# JUnit) into build/demo. Side B is bitnet-cpp-server when it was built
# (-DBITNET_CPP_DIR=...), otherwise the native server on its scalar reference
# kernels; the output says which.
set -euo pipefail
build_dir="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build}"
exec "$build_dir/bin/bitparity" demo --cache-dir "$build_dir/demo-cache" --out-dir "$build_dir/demo"
