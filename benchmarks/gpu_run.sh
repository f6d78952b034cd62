#!/usr/bin/env bash
# The training-memory GPU run in one call on a GPU machine (one H200: 16 cores, 128 GiB; about 6 minutes).
#
#   here (CPU machine), once:  bash benchmarks/gpu_run.sh --prepare
#       puts into .gpu/ (ignored through .git/info/exclude) the wheels the device image lacks — deltalake and its
#       needs, pyroaring, torchao — and a copy of ../shared/anchors/gpu_memory_anchor.py; prints the size.
#   on the GPU machine (.gpu/ copied along), one call:   bash benchmarks/gpu_run.sh    (allow 8 minutes)
#   check it on a CPU:         bash benchmarks/gpu_run.sh --dry-run
#
# Stages, each under its own timeout so a slow one never costs the others (results land in benchmarks/results/
# and, when $OUT is set, are copied there; every file names the card):
#   1. benchmarks/training_memory.py: the anchor first (its own numbers), then every plan of the reference GPT —
#      allocated and reserved peaks beside the planner's predictions (closed form and every block traced) — the
#      planner's picks under 0.25×, 0.42×, 0.76× of fp32's measured peak, and 200-step loss curves against fp32;
#   2. benchmarks/training_loader_feed.py: a Delta table through DeltaLoader into a training step on the GPU,
#      against the same step on a batch already on the GPU;
#   3. benchmarks/training_models.py --device cuda: the ResNet and BERT examples, allocated and reserved.
set -u
cd "$(dirname "$0")/.."
MODE=gpu
case "${1:-}" in
  --prepare) MODE=prepare ;;
  --dry-run) MODE=dry ;;
  "") ;;
  *) echo "usage: bash benchmarks/gpu_run.sh [--prepare|--dry-run]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
RESULTS=benchmarks/results
# a dry run's files are a check of the script, not results: they go to $OUT (or benchmarks/work/, ignored)
[ "$MODE" = dry ] && RESULTS=${OUT:-benchmarks/work/dryrun}

if [ "$MODE" = prepare ]; then
  mkdir -p .gpu/wheels .gpu/anchors
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  cp ../shared/anchors/gpu_memory_anchor.py .gpu/anchors/
  PIP=${PIP:-.venv/bin/python -m pip}
  $PIP download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/wheels \
    deltalake==1.6.6 arro3-core deprecated pyroaring torchao==0.18.0 || exit 1
  du -sh .gpu; echo "the working tree that travels must stay under 64 MiB: $(du -sb .gpu | cut -f1) bytes in .gpu"
  exit 0
fi

export PYTHONUNBUFFERED=1
if [ -d .gpu/wheels ] && ls .gpu/wheels/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .gpu/wheels/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$(pwd)
ANCHOR=""
for a in "${ANCHOR_SCRIPT:-}" .gpu/anchors/gpu_memory_anchor.py shared/anchors/gpu_memory_anchor.py \
         ../shared/anchors/gpu_memory_anchor.py; do
  if [ -n "$a" ] && [ -f "$a" ]; then ANCHOR=$a; break; fi
done
mkdir -p "$RESULTS"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi";
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } \
  | tee "$RESULTS/training_gpu_card.txt"

if [ "$MODE" = dry ]; then
  timeout 240 $PY benchmarks/training_memory.py --dry-run --out "$RESULTS/training_memory_dryrun.json"
  timeout 120 $PY benchmarks/training_loader_feed.py --device cpu --rows 20000 --features 8 --batch 1024 \
    --width 64 --layers 2 --steps 4 --workers 0 --plan fp32+none+adamw --out "$RESULTS/training_loader_feed_dryrun.json"
  timeout 240 $PY benchmarks/training_models.py --device cpu --quick --out "$RESULTS/training_models_dryrun.json"
  FILES="training_gpu_card.txt training_memory_dryrun.json training_loader_feed_dryrun.json training_models_dryrun.json"
else
  ANCHOR_ARGS=()
  [ -n "$ANCHOR" ] && ANCHOR_ARGS=(--anchor "$ANCHOR" --anchor-timeout-s 60)
  timeout 300 $PY benchmarks/training_memory.py --deadline-s 90 --divergence-steps 200 --total-deadline-s 270 \
    "${ANCHOR_ARGS[@]}" --out "$RESULTS/training_memory.json"
  echo "stage 1 rc=$?"
  timeout 60 $PY benchmarks/training_loader_feed.py --device cuda --rows 1000000 --workers 0,4 --steps 40 \
    --out "$RESULTS/training_loader_feed.json"
  echo "stage 2 rc=$?"
  timeout 45 $PY benchmarks/training_models.py --device cuda --deadline-s 25 --out "$RESULTS/training_models_cuda.json"
  echo "stage 3 rc=$?"
  FILES="training_gpu_card.txt training_memory.json training_loader_feed.json training_models_cuda.json"
fi
if [ -n "${OUT:-}" ] && [ "$OUT" != "$RESULTS" ]; then
  for f in $FILES; do [ -f "$RESULTS/$f" ] && cp "$RESULTS/$f" "$OUT/"; done
fi
exit 0
