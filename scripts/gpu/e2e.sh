#!/usr/bin/env bash
# Full-size training through the CLI on the GPU: for each model, `llmts train` 20 steps of B×T with 2-way gradient
# accumulation, validation and a checkpoint every 10 steps, on the built-in Moby-Dick shards (offline); then a copy of
# the run without its step-20 checkpoint is resumed from step 10 and its steps 11-20 must repeat the uninterrupted
# ones (within 1e-3 relative: on CUDA the norm weights' gradients are summed with atomics, so not bit for bit).
# Usage (from the repository root, after npx tsc or from a bundle): bash scripts/gpu/e2e.sh
#   MODELS="variant-124m gpt2-124m" DEVICE=cuda B=16 T=1024 DATA=/tmp/llmts-cuda-train/data WORK=/tmp/llmts-e2e
set -uo pipefail
MODELS=${MODELS:-variant-124m gpt2-124m}; DEVICE=${DEVICE:-cuda}; B=${B:-16}; T=${T:-1024}
DATA=${DATA:-/tmp/llmts-cuda-train/data}; WORK=${WORK:-/tmp/llmts-e2e}
llmts() { node dist/src/cli/main.js "$@"; }
[ -f "$DATA/moby-dick.json" ] || llmts prepare --corpus moby-dick --out "$DATA" --workers 0 || exit 1
train() {   # train MODEL RUN_DIR [FLAG...]
  llmts train --model "$1" --data "$DATA" --device "$DEVICE" --out "$2" --steps 20 --batch-size "$B" --seq-len "$T" \
    --total-batch-size $((B * T * 2)) --warmup-steps 4 --val-every 10 --val-steps 1 --checkpoint-every 10 --sample-every 0 "${@:3}"
}
for m in $MODELS; do
  run=$WORK/$m copy=$WORK/$m-resumed
  train "$m" "$run" --overwrite || exit 1
  rm -rf "$copy" && cp -r "$run" "$copy" && rm -rf "$copy/checkpoints/step_000020"
  train "$m" "$copy" --resume || exit 1
  node -e '
    const fs = require("fs"), [a, b, name] = process.argv.slice(1)
    const tail = f => fs.readFileSync(f, "utf8").trim().split("\n").map(l => JSON.parse(l)).filter(r => r.loss !== undefined && r.step > 10).map(r => r.loss)
    const x = tail(a), y = tail(b), worst = Math.max(...x.map((v, i) => Math.abs(v - y[i]) / Math.abs(v)))
    console.log(`${name} steps 11-20 uninterrupted ${x.map(v => v.toFixed(4)).join(" ")}`)
    console.log(`${name} steps 11-20 resumed       ${y.map(v => v.toFixed(4)).join(" ")}`)
    console.log(`${name} worst relative difference ${worst.toExponential(2)} (tolerance 1e-3)`)
    process.exit(x.length === 10 && y.length === 10 && worst <= 1e-3 ? 0 : 1)' "$run/log.jsonl" "$copy/log.jsonl" "$m" || exit 1
done
echo "e2e: OK"
