#!/usr/bin/env bash
# The `ncu` stage of scripts/gpu/run.sh: Nsight Compute on one launch of each named kernel inside a real training
# step (bench/cuda.ts, variant-124m, B=16, T=1024), so a GPU session learns what bounds a kernel (tensor pipe,
# shared-memory pipe, DRAM, occupancy, stall reasons) rather than only its time. Prints ncu's details pages.
# Usage (from the repo root, with node on PATH): bash scripts/gpu/ncu.sh   (NCU_KERNELS: see DEFAULT)
set -uo pipefail

NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2> /dev/null | head -1)
[ -n "$NCU" ] || { echo "ncu: Nsight Compute (ncu) is not installed here"; exit 1; }
echo "ncu: $NCU ($("$NCU" --version | tail -1))"
# NCU_KERNELS="bench-run=kernel[,kernel...] ...": the default covers the attention kernels, the classifier, the fused
# norm, RoPE and AdamW
DEFAULT="variant-124m:16=attention_mma_forward_d64,attention_mma_backward_dq_d64,attention_mma_backward_dkv_d64,crossentropy_forward_staged,residual_rmsnorm_forward_c3,rope_rotate,adamw_update,rmsnorm_backward_c3"
DEFAULT="$DEFAULT variant-124m:16:4-blocks=attention_mma_backward_dq_b4_d64,attention_mma_backward_dkv_b4_d64 variant-124m:16:wgmma=attention_wgmma_forward_d64,attention_wgmma_backward_dq_d64,attention_wgmma_backward_dkv_d64 variant-124m:16:atomic-dq=attention_mma_backward_dkvq_d64,attention_dq_finish"
SECTIONS="--section SpeedOfLight --section LaunchStats --section Occupancy --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats"
rc=0
for spec in ${NCU_KERNELS:-$DEFAULT}; do
  run=${spec%%=*}
  for kernel in $(echo "${spec#*=}" | tr ',' ' '); do
    echo "=== $kernel ($run)"
    # --launch-skip 2: each kernel's third launch is profiled (AdamW's: the third step's). ncu locks the clocks at
    # base: read its pages for what bounds a kernel, and run.sh's bench and profile stages for its time.
    # shellcheck disable=SC2086
    "$NCU" --target-processes all --kernel-name "$kernel" --launch-skip 2 --launch-count 1 $SECTIONS --print-units base \
      node dist/bench/cuda.js --runs "$run" --python none --steps 2 --warmup 1 --peak-tflops 1 2>&1 |
      grep -v -E '^==PROF==|^\s*$' | grep -E -v '^\|' || rc=1
  done
done
exit $rc
