#!/usr/bin/env bash
# CUDA paths of the package in under 5 minutes on one GPU:
#   1. every loss forward + backward and every map transform on GPU tensors, equal to the CPU results, timed
#      (benchmarks/gpu_check.py);
#   2. the CUDA-only tests (they skip on machines without a GPU);
#   3. one AMP training epoch of the Kvasir-SEG bundle on a generated look-alike (no download), DBCE and DIBE setups.
#   bash benchmarks/gpu_check.sh [work_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-$(mktemp -d)}"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check.sh needs a CUDA GPU')"
start=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "== 1. losses and maps on the GPU"
timeout 180 python benchmarks/gpu_check.py --repeats 5
echo "== 2. CUDA-only tests"
timeout 120 python -m pytest -q -p no:cacheprovider -m gpu tests
echo "== 3. one AMP epoch of bundles/kvasir_seg on a look-alike (dbce, dibe)"
python -c "from monai_imbalance.apps.lookalike import write_kvasir_lookalike as w; print(w('$WORK/data', num_images=64))"
rm -rf "$WORK/kvasir_seg" && cp -r bundles/kvasir_seg "$WORK/kvasir_seg"
for loss in dbce dibe; do
  t0=$(date +%s)
  timeout 150 python -m monai.bundle run --config_file "['$WORK/kvasir_seg/configs/train.yaml']" \
    --bundle_root "$WORK/kvasir_seg" --dataset_dir "$WORK/data/Kvasir-SEG" --loss "$loss" --epochs 1 \
    --amp true --num_workers 4 --progress false ${GPU_CHECK_OVERRIDES:-} 2>&1 | tail -n 3
  echo "kvasir_seg $loss: one AMP epoch (64 look-alike images) in $(( $(date +%s) - t0 )) s"
done
echo "gpu_check.sh: $(( $(date +%s) - start )) s wall on $(python -c 'import torch; print(torch.cuda.get_device_name(0))')"
