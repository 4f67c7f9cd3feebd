#!/usr/bin/env bash
# THE command of a GPU session: unpacks gpu-bundle/ (Node.js, node_modules, dist) where missing, then runs the stages
# below, each under its own time limit, writing every log to $OUT (default ./gpu-out). Stages keep going after a
# failure; the exit code is the number of failed stages. Pick stages with STAGES="env tests".
# Usage: bash scripts/gpu/run.sh   or, from a bundle: bash gpu-bundle/run.sh   (BENCH_RUNS=model:B,... PYTHON=...)
#        STAGES=compare bash scripts/gpu/run.sh   (COMPARE_RUNS=model:B,... REPEAT=3)
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
if [ -f "$HERE/node.xz" ]; then BUNDLE=$HERE; else BUNDLE=$(cd "$HERE/../.." && pwd)/gpu-bundle; fi
if [ -f "$HERE/../../package.json" ] && [ ! -f "$HERE/node.xz" ]; then ROOT=$(cd "$HERE/../.." && pwd)
elif [ -f "$BUNDLE/../package.json" ]; then ROOT=$(cd "$BUNDLE/.." && pwd)
else ROOT=$(cd "$BUNDLE/.." && pwd)/llmts; fi
OUT=${OUT:-$ROOT/gpu-out}
STAGES=${STAGES:-env tests train e2e bench profile hf}
mkdir -p "$OUT"
log() { echo "[run.sh $(date +%H:%M:%S)] $*" | tee -a "$OUT/summary.txt" >&2; }

# xz without xz-utils: Python's lzma
unxz_to() { if command -v xz > /dev/null; then xz -dc "$1" > "$2"; else python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$1" "$2"; fi; }
untar_xz() {   # untar_xz FILE DIR [TOP-LEVEL ENTRY...]
  if command -v xz > /dev/null; then tar -xJf "$1" -C "$2" "${@:3}"
  else python3 -c "import tarfile,sys; t=tarfile.open(sys.argv[1]); keep=sys.argv[3:]; t.extractall(sys.argv[2], [m for m in t.getmembers() if not keep or m.name.split('/')[0] in keep])" "$@"; fi
}

unpack() {
  if [ ! -f "$ROOT/package.json" ]; then
    log "unpacking llmts.tar.xz into $ROOT"
    mkdir -p "$ROOT" && untar_xz "$BUNDLE/llmts.tar.xz" "$ROOT"
  fi
  NODE_DIR=$ROOT/.gpu-node
  if [ ! -x "$NODE_DIR/node" ]; then
    if command -v node > /dev/null && node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)'; then
      mkdir -p "$NODE_DIR" && ln -sf "$(command -v node)" "$NODE_DIR/node"
    else
      log "unpacking Node.js ($(cat "$BUNDLE/node-version.txt" 2>/dev/null))"
      mkdir -p "$NODE_DIR" && unxz_to "$BUNDLE/node.xz" "$NODE_DIR/node" && chmod +x "$NODE_DIR/node"
    fi
  fi
  export PATH="$NODE_DIR:$PATH"
  if [ ! -d "$ROOT/node_modules/koffi" ]; then log "unpacking node_modules"; untar_xz "$BUNDLE/node_modules.tar.xz" "$ROOT"; fi
  # dist/: carried in from the build machine (npx tsc there, then carry dist), else the bundle's prebuilt one
  if [ ! -f "$ROOT/dist/src/backend/cuda/index.js" ]; then
    log "unpacking the bundle's prebuilt dist/ (built by pack.sh; later .ts edits are not in it)"
    untar_xz "$BUNDLE/llmts.tar.xz" "$ROOT" dist
  fi
  log "dist/ built $(date -r "$ROOT/dist/src/backend/cuda/index.js" '+%F %T' 2>/dev/null)"
  if [ -f "$ROOT/dist/sources.txt" ] && [ -f "$ROOT/src/cli/main.ts" ]; then
    local now; now=$(cd "$ROOT" && find src test bench -name '*.ts' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    if [ "$now" != "$(cat "$ROOT/dist/sources.txt")" ] && [ "${ALLOW_STALE_DIST:-0}" != 1 ]; then
      log "STALE dist/: built from other .ts sources than this checkout's; run bash scripts/gpu/pack.sh (or npx tsc and carry dist) first, or set ALLOW_STALE_DIST=1. Differences (< dist, > checkout):"
      diff <(cat "$ROOT/dist/sources.txt") <(echo "$now") | grep '^[<>]' | head -n 10 | tee -a "$OUT/summary.txt" >&2
      exit 90
    fi
  fi
}

# Python with CUDA torch: $PYTHON, else the first python that imports torch with a GPU
find_python() {
  [ "${PYTHON:-}" = none ] && { echo none; return; }   # llm.ts alone: bench and profile without the PyTorch runs
  for p in ${PYTHON:-} python3 python /opt/*/bin/python3 "$HOME"/*/bin/python3 /usr/bin/python3; do
    [ -n "$p" ] && command -v "$p" > /dev/null 2>&1 && "$p" -c 'import torch,sys; sys.exit(not torch.cuda.is_available())' 2> /dev/null && { echo "$p"; return; }
  done
  echo none
}

# Python with transformers (the hf stage): $PY when it has it, else the first candidate that imports it
find_hf_python() {
  for p in "$PY" ${PYTHON:-} ${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python3} python3 python /opt/*/bin/python3 "$HOME"/*/bin/python3 /usr/bin/python3; do
    [ -n "$p" ] && [ "$p" != none ] && command -v "$p" > /dev/null 2>&1 && "$p" -c 'import transformers, torch, numpy' 2> /dev/null && { echo "$p"; return; }
  done
  echo none
}

# libraries: the system's CUDA first; the torch wheels' nvidia/*/lib when the system has no cuBLASLt/NVRTC
find_libs() {
  if ! ldconfig -p 2> /dev/null | grep -q libcublasLt && ! ls /usr/local/cuda/lib64/libcublasLt.so* > /dev/null 2>&1; then
    local py; py=$(find_python)
    if [ "$py" != none ]; then
      local dirs; dirs=$("$py" -c 'import glob,os,site,sys; r={*site.getsitepackages(),site.getusersitepackages(),*[p for p in sys.path if p.endswith("-packages")]}; print(":".join(sorted({d for x in r for d in glob.glob(os.path.join(x,"nvidia","*","lib"))})))')
      [ -n "$dirs" ] && export LLMTS_CUDA_LIBS="${LLMTS_CUDA_LIBS:+$LLMTS_CUDA_LIBS:}$dirs" && log "LLMTS_CUDA_LIBS=$LLMTS_CUDA_LIBS"
    fi
  fi
  # NCCL (the GPU suite's one-rank communicator) usually comes only with the torch wheels: its folder alone, last
  if ! ldconfig -p 2> /dev/null | grep -q libnccl.so.2 && [[ "${LLMTS_CUDA_LIBS:-}" != */nccl/lib* ]]; then
    local py; py=$(find_python)
    local nccl; [ "$py" != none ] && nccl=$("$py" -c 'import glob,site,sys; r={*site.getsitepackages(),*[p for p in sys.path if p.endswith("-packages")]}; print(next(iter(sorted(d for x in r for d in glob.glob(x+"/nvidia/nccl/lib"))), ""))' 2> /dev/null)
    [ -n "${nccl:-}" ] && export LLMTS_CUDA_LIBS="${LLMTS_CUDA_LIBS:+$LLMTS_CUDA_LIBS:}$nccl" && log "NCCL from $nccl"
  fi
}

FAILED=0
stage() {   # stage NAME SECONDS command...
  local name=$1 secs=$2; shift 2
  local override="LIMIT_$name"; secs=${!override:-$secs}   # LIMIT_tests=200 etc. fit several stages in one call
  case " $STAGES " in *" $name "*) ;; *) return 0 ;; esac
  log "stage $name (limit ${secs}s): $*"
  local t0=$SECONDS
  (cd "$ROOT" && timeout "$secs" "$@") > "$OUT/$name.txt" 2>&1
  local rc=$?
  log "stage $name: exit $rc after $((SECONDS - t0))s (log: $OUT/$name.txt)"
  tail -n 25 "$OUT/$name.txt" | sed "s/^/  $name| /" >&2
  [ $rc -eq 0 ] || FAILED=$((FAILED + 1))
}

unpack
find_libs
PY=$(find_python)
log "root $ROOT, node $(node --version), python ${PY}, stages: $STAGES"

# env: device, libraries, kernel compile time. tests: the CUDA conformance, mixed-precision, golden and trajectory
# tests. train: the CLI, cuda vs cpu, resume. e2e: the CLI at 124M, resume. bench: llm.ts vs PyTorch, appended to
# bench/RESULTS.md. profile: GPU time per op. ncu, only when named in STAGES: Nsight Compute details of the main
# kernels inside a training step.
# infer, only when named: the inference commands' GPU memory. compare, only when named: llm.ts vs PyTorch by medians
# of alternating runs (bench/cuda --repeat).
# LIMIT_<stage>=S overrides a limit; together the limits exceed 10 minutes, so a session capped at 10 minutes a
# command runs the stages in two or three calls.
stage env 300 bash -c 'nvidia-smi; echo; node dist/bench/cuda-info.js'
stage tests 540 node --test --test-reporter=tap dist/test/backend/cuda-host.test.js dist/test/backend/cuda.test.js
stage train 540 node dist/bench/cuda-train.js --out /tmp/llmts-cuda-train
# e2e: full-size llm.ts training through the CLI (variant-124m and gpt2-124m, B=16, T=1024, 20 steps, checkpoints, resume)
stage e2e 300 bash scripts/gpu/e2e.sh
stage bench 580 node dist/bench/cuda.js --runs "${BENCH_RUNS:-variant-124m:16,variant-124m:16:4-blocks,variant-124m:16:wgmma,variant-124m:16:atomic-dq,gpt2-124m:16,variant-350m:16,variant-124m:16:rows=8192,variant-124m:16:recompute}" --python "$PY" --append
# compare, only when named: each entry's llm.ts and PyTorch runs alternate REPEAT times; medians, ranges, ratio of
# medians, appended to bench/RESULTS.md. Time (the 2026-11-26 H100 session): llm.ts ~15-20 s a run with its process
# start (350M a few s more), PyTorch ~40-60 s with torch.compile, so ~55-80 s a round; 3 rounds of 4 entries
# (660-960 s) do not fit one 10-minute command, 3 rounds of 2 (330-480 s, plus ~10 s for the GEMM peak) fit 540 s.
# The default is one 124M and one 350M entry; the other two in a second call:
# STAGES=compare COMPARE_RUNS=gpt2-124m:16,variant-350m:32. A stage cut short still logs every finished round.
stage compare 540 node dist/bench/cuda.js --runs "${COMPARE_RUNS:-variant-124m:16,variant-350m:16}" --repeat "${REPEAT:-3}" --steps 20 --python "$PY" --append
# profile: llm.ts's GPU time per op, and (unless PYTHON=none) PyTorch's per kernel category beside it (torch.profiler,
# ~60 s more per model:B for its compile); the entries of one model:B share its PyTorch run
stage profile 420 node dist/bench/cuda.js --runs "${PROFILE_RUNS:-variant-124m:16,variant-124m:16:4-blocks,variant-124m:16:wgmma}" --python "$PY" --profile --steps 5
stage ncu 540 bash scripts/gpu/ncu.sh
# infer, only when named: GPU memory of eval loss, eval hellaswag (packed pool) and sample at gpt2-350m, T=1024, as
# each command builds its model (the CPU emulator's plan of the same is in bench/RESULTS.md, 2026-11-26)
stage infer 240 bash -c 'for c in loss hellaswag sample; do node dist/bench/cuda-inference.js --model gpt2-350m --command $c || exit 1; done'
# hf: random-init tiny models (seed 1234) exported in f32 and bf16 to $HF_DIR (not $OUT: ~200 MB), our logits
# dumped by scripts/gpu/hf-logits.mjs, then reference/hf_load_check.py: static checks, transformers on CPU (exact
# float32), transformers on CUDA (model class, tokenizer ids, logits vs ours, generate). One JSON line per directory
# in $OUT/hf.txt.
stage hf 420 bash -c 'set -e; py=$1; dir=$2
  [ "$py" != none ] || { echo "hf: no python imports transformers, torch and numpy (set PYTHON=/path/to/venv/bin/python3)"; exit 1; }
  echo "hf: python $py"; rm -rf "$dir"; mkdir -p "$dir"
  for m in tiny-variant tiny-gpt2; do for d in f32 bf16; do
    node dist/src/cli/main.js export --model "$m" --seed 1234 --dtype "$d" --out "$dir/$m-$d"; done; done
  node scripts/gpu/hf-logits.mjs --dist dist --out "$dir/ours.json" "$dir"/tiny-*-*/
  "$py" reference/hf_load_check.py --logits "$dir/ours.json" --dry-run
  set +e; rc=0
  "$py" reference/hf_load_check.py --logits "$dir/ours.json" --device cpu || rc=1
  if "$py" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    "$py" reference/hf_load_check.py --logits "$dir/ours.json" --device cuda || rc=1
  else echo "hf: no CUDA device for the cuda pass"; fi
  exit $rc' _ "$(find_hf_python)" "${HF_DIR:-/tmp/llmts-hf}"
[ -f "$ROOT/bench/RESULTS.md" ] && cp "$ROOT/bench/RESULTS.md" "$OUT/RESULTS.md"
log "done: $FAILED failed stage(s); logs in $OUT"
exit $FAILED
