#!/usr/bin/env bash
# The CUDA checks (issue 22) as one script for a GPU machine: at most 9.5 minutes, each part under its own
# timeout, every log written to the folder given (default /tmp/gpu_checks).
#
# On the project's GPU machine (../shared/device/README.md): run ../shared/device/prepare.sh here,
# carry .device, and start the command there with the line prepare.sh prints, then:
#     bash bench/gpu_checks.sh "$OUT"
# Anywhere else with an NVIDIA card and the project installed: bash bench/gpu_checks.sh
set -uo pipefail
out=${1:-/tmp/gpu_checks}
mkdir -p "$out"
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt" 2>&1
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$out/gpu.txt"

# Selective Search needs opencv-contrib, which the GPU machine lacks (deselected there only).
no_contrib='not selective_search and not before_the_rpn'

echo "== fast subset (cpu and cuda cases)"
timeout 170 python3 -m pytest -q -p no:cacheprovider -m "not slow and not browser" -k "$no_contrib" >"$out/fast.log" 2>&1
echo "rc=$?"; tail -n 4 "$out/fast.log"

echo "== slow tests with a cuda case, and the training tests"
timeout 120 python3 -m pytest -q -p no:cacheprovider -m "slow and not browser" \
  -k "($no_contrib) and (cuda or learn or receptive or second_stage)" >"$out/slow.log" 2>&1
echo "rc=$?"; tail -n 4 "$out/slow.log"

echo "== benchmark: every model, trace vs torchvision on CUDA, training step, train command"
timeout 180 python3 bench/benchmark.py --device cuda --models all --train-command --runs 15 --no-cold \
  --no-app-steps --no-browser --json "$out/bench.json" >"$out/bench.txt" 2>&1
echo "rc=$?"; cat "$out/bench.txt"

echo "== a classroom on the GPU (30 sessions, 10 train; AppTest, no browser there)"
timeout 100 python3 bench/gpu_classroom.py --device cuda --sessions 30 --train 10 --json "$out/classroom.json" \
  >"$out/classroom.txt" 2>&1
echo "rc=$?"; cat "$out/classroom.txt"
