#!/usr/bin/env bash
# The main job on a built-in default (the README's first quick-start command runs
# this after building): write a small BitNet b1.58 model with bitnet-synth (once),
# then show what the native engine does with it: model facts, greedy generation
# from a text prompt, and batch-vs-sequential logits.
set -euo pipefail
build_dir="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build}"
bin="$build_dir/bin"
model="$build_dir/models/demo-b158.gguf"
mkdir -p "$build_dir/models"
if [[ ! -f "$model" ]]; then
  echo "== bitnet-synth: writing a small bitnet-b1.58 model to $model"
  "$bin/bitnet-synth" --shape tiny --seed 1 --out "$model"
fi
echo "== bitnet-run info"
"$bin/bitnet-run" info --model "$model"
echo "== bitnet-run generate (greedy, 32 tokens)"
"$bin/bitnet-run" generate --model "$model" --text "The quick brown fox" -n 32 --ignore-eos
echo "== bitnet-run logits: batch and sequential evaluation of the same prompt"
"$bin/bitnet-run" logits --model "$model" --text "One ternary weight at a time." --mode batch --out "$build_dir/models/batch.f32"
"$bin/bitnet-run" logits --model "$model" --text "One ternary weight at a time." --mode seq --out "$build_dir/models/seq.f32"
python3 - "$build_dir/models/batch.f32" "$build_dir/models/seq.f32" <<'PY'
import struct, sys
a = open(sys.argv[1], 'rb').read(); b = open(sys.argv[2], 'rb').read()
n = len(a) // 4
x = struct.unpack(f'<{n}f', a); y = struct.unpack(f'<{n}f', b)
d = [abs(p - q) for p, q in zip(x, y)]
print(f"batch vs seq: {n} logits, max |d| = {max(d):.5f}, mean |d| = {sum(d)/n:.6f}")
PY
echo "== done. Next: the bitparity orchestrator compares this engine with bitnet.cpp (see README)."
