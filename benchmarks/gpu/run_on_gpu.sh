#!/usr/bin/env bash
# Run on the GPU machine (device tool, carry [".carry"]): GPU benchmarks, then a GLUE pipeline config.
# Results come back as one tarball in $OUT (the tool returns at most 8 files).
#   bash benchmarks/gpu/run_on_gpu.sh [PIPELINE_CONFIG [--tasks T ... --importances I ... --levels L ... --seeds S ...]]
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .carry/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OBCE_GLUE_DIR=$PWD/.carry/glue
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
(cd benchmarks && python3 bench_scoring.py --device cuda --full && python3 bench_collection.py --device cuda \
   && python3 bench_pruned.py --device cuda) 2>&1 | tee "$OUT/bench.log"
if [ -n "${1:-}" ]; then
  python3 -m obce.cli pipeline --config "$1" "${@:2}" 2>&1 | tail -200 > "$OUT/pipeline.log"
fi
tar czf "$OUT/results.tgz" benchmarks/results results 2>/dev/null
