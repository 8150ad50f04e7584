#!/usr/bin/env bash
# Run on the GPU machine (device tool, carry [".carry"]): the GPU GLUE protocol through the Ray executor
# with fractional GPUs where Ray is importable, else as parallel queues that share the GPU
# (benchmarks/gpu/glue_queue.py; small models leave one process far from filling it), stopped
# at a deadline, then the GPU benchmarks. Everything comes back as one tarball in $OUT (the tool returns
# at most 8 files), refreshed every 45 s so that a call stopped at its limit still returns what finished;
# records are written whole, and the next call resumes where this one stopped.
#   bash benchmarks/gpu/run_on_gpu.sh [GLUE_SECONDS [BENCH_SECONDS]]    (defaults 470 and 80)
set -uo pipefail
glue_s=${1:-470}
bench_s=${2:-80}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .carry/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
  OBCE_GLUE_DIR=$PWD/.carry/glue TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=2
mkdir -p logs benchmarks/results results/glue_gpu results/glue_gpu_sst2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import sys, torch, transformers, datasets, pyarrow, triton, obce
print(sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__,
      'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__, 'triton', triton.__version__)" \
  2>&1 | tee -a "$OUT/gpu.txt" || exit 1
snapshot() {
  tar czf /tmp/results.tgz --exclude=cache --exclude=finetuned results/glue_gpu results/glue_gpu_sst2 benchmarks/results logs 2>/dev/null
  cp /tmp/results.tgz "$OUT/.results.tgz" && mv "$OUT/.results.tgz" "$OUT/results.tgz"
}
(while sleep 45; do snapshot; done) &
snapper=$!
if [ "$glue_s" -gt 0 ] && python3 -c "import ray" 2>/dev/null; then
  # the Ray executor: every cell still to do as a Ray task with an eighth of the GPU and 2 CPUs, the
  # shared inputs (teachers, scores) computed once upstream; the driver stops at the deadline and the
  # next call resumes (records are written whole)
  for cfg in benchmarks/gpu/glue_gpu_carried.yaml benchmarks/gpu/glue_gpu_sst2_carried.yaml; do
    timeout "$glue_s" python3 -m obce.cli -q pipeline --config "$cfg" --executor ray --gpus-per-cell 0.125 \
      --cpus-per-cell 2 > "logs/$(basename "$cfg" .yaml).log" 2>&1
  done
elif [ "$glue_s" -gt 0 ]; then
  # without Ray on the machine (its wheel, 79 MB, does not fit the 64 MiB carry): the per-task queues
  echo "ray is not importable here: running the per-task queues (benchmarks/gpu/glue_queue.py)" | tee -a "$OUT/gpu.txt"
  main=benchmarks/gpu/glue_gpu_carried.yaml
  sst2=benchmarks/gpu/glue_gpu_sst2_carried.yaml
  pids=()
  q() { local name=$1; shift; timeout "$glue_s" python3 benchmarks/gpu/glue_queue.py "$@" > "logs/$name.log" 2>&1 &
        pids+=($!); }
  # the two longest tasks get two queues each, over disjoint runs
  q sst2-a "$sst2" sst2 --half 1
  q sst2-b "$sst2" sst2 --half 2
  q cola-a "$main" cola --half 1
  q cola-b "$main" cola --half 2
  for t in stsb mrpc rte wnli; do q "$t" "$main" "$t"; done
  wait "${pids[@]}"
fi
if [ "$bench_s" -gt 0 ]; then
  (cd benchmarks && timeout "$bench_s" bash -c "python3 bench_pruned.py --device cuda --model ../.carry/minilm-fp16 \
     && python3 bench_scoring.py --device cuda --reference cpu --full") > logs/bench.log 2>&1
fi
kill $snapper 2>/dev/null
snapshot
ls -l "$OUT"
