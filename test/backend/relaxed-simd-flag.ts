// Test tooling: turns on relaxed SIMD in an engine that has it behind a V8 flag (Node 20; shipped from Node 22), for
// wasm.test.ts's second run (`node --import` this file). V8 flags are process-wide, so worker threads get it too.
import { setFlagsFromString } from 'node:v8'

setFlagsFromString('--experimental-wasm-relaxed-simd')
