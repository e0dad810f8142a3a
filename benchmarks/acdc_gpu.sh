#!/usr/bin/env bash
# The real-data ACDC benchmark at the paper's protocol (bundles/acdc_seg/configs/bench_gpu.yaml) on one CUDA GPU:
# all seven setups at once (one process each, the GPU has room for seven of these U-Nets), one seed, then the
# small-structure report against Dice + CE.
#   bash benchmarks/acdc_gpu.sh /path/to/ACDC [out_dir] [seeds]
# Resumable like every `monai-imbalance bench`: finished runs are read back, not trained again.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:?usage: benchmarks/acdc_gpu.sh /path/to/ACDC [out_dir] [seeds]}"
OUT="${2:-bench_acdc_gpu}"
SEEDS="${3:-1}"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'acdc_gpu.sh needs a CUDA GPU (the CPU budget is configs/bench_cpu.yaml)')"
start=$(date +%s)
monai-imbalance bench --bundle bundles/acdc_seg --config bundles/acdc_seg/configs/bench_gpu.yaml --seeds "$SEEDS" \
  --losses ce,dice_ce,dice,boundary,modified_boundary,dbce,dibe --baseline dice_ce --small-structures \
  --parallel 7 --no-progress --out "$OUT" -- --dataset_dir "$DATA"
echo "acdc_gpu.sh: $(( $(date +%s) - start )) s wall on $(python -c 'import torch; print(torch.cuda.get_device_name(0))')"
