#!/usr/bin/env bash
# Prepare .carry/ (ignored by git) for a GPU session through the device tool: wheels for Python 3.12
# that the GPU image lacks (datasets and its dill and multiprocess), a float16 copy of the embedded
# MiniLM (its float32 safetensors is 90 MB, over the 64 MiB carry limit; obce upcasts it to float32 and
# records that), and the GLUE TSVs of the tasks with training files (55 MB; the repository adds ~11 MB,
# so gudhi's wheel, 4.5 MB, and QNLI's dev file stay behind: the GPU benchmark checks the CUDA scorer
# against the CPU fast path, `bench_scoring.py --reference cpu`).
# Usage (repo root, venv active): bash benchmarks/gpu/prepare_carry.sh [GLUE_DIR]
set -euo pipefail
glue=${1:-${OBCE_GLUE_DIR:-../shared/glue}}
rm -rf .carry && mkdir -p .carry/whl
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .carry/whl datasets dill multiprocess
python - <<'PY'
import torch, obce
model, tok = obce.load_model("minilm")
model.to(torch.float16).save_pretrained(".carry/minilm-fp16")
tok.save_pretrained(".carry/minilm-fp16")
PY
mkdir -p .carry/glue
for t in CoLA SST-2 MRPC STS-B RTE WNLI; do cp -r "$glue/$t" .carry/glue/; done
du -sh .carry
# the scores, on this CPU (a few minutes; cached under the configs' out, which travels with the tree)
python benchmarks/gpu/precompute_scores.py
