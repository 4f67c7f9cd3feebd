// Test tooling: turns one kernel .cu file into C++ for the CPU emulator (fake.cpp's nvrtcCompileProgram runs it).
// __shared__ declarations become the runtime's garbage-filled buffers, pointer casts become alignment-checked ones,
// and each extern "C" kernel gets a trampoline `llmemu_<name>` that unpacks the launch's argument buffer through a
// struct of the DECLARED parameter types (the C compiler's layout, not the host packer's, whose size it checks).
// Usage: node gen.mjs kernel.cu out.cpp

import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

const [src, out] = process.argv.slice(2)
let text = readFileSync(src, 'utf8')
text = text.replace(/extern\s+__shared__\s+(\w+)\s+(\w+)\s*\[\s*\]\s*;/g, '$1* $2 = ($1*)emu_dynamic_shared();')
// the other __shared__ declarations become statics registered once (runtime.cpp garbage-fills them before each block)
let registered = 0
text = text.replace(/__shared__\s+(\w+)\s+([^;]+);/g, (_, type, decls) => {
  const names = decls.split(',').map(d => /^\s*(\w+)/.exec(d)[1]), flag = `emu_shared_${registered++}`
  return `static ${type} ${decls}; static const bool ${flag} = ` +
    `${names.map(n => `emu_register_shared(&${n}, sizeof ${n})`).join(' && ')}; (void)${flag};`
})

const strip = t => t.replace(/\/\/[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, c => c.replace(/[^\n]/g, ''))

// Every C-style cast to a pointer of a type wider than a byte becomes emu_cast<T>(operand, "T*"), which checks that
// the pointer is aligned for T: a GPU faults on a misaligned access (a 16-byte vector load off a 16-byte boundary,
// say) where x86 just reads. The operand is what C's grammar gives a cast: a unary expression with its postfixes.
const castRe = /\((const\s+)?(uint4|float4|uint2|float2|unsigned short|unsigned|int|float|double|llm_bf16)\s*\*\s*\)/y
const skipSpace = (s, i) => { while (i < s.length && /\s/.test(s[i])) i++; return i }
function closing(s, i) {   // s[i] is '(' or '[': the index past its match, or -1
  for (let j = i, depth = 0; j < s.length; j++) {
    if ('(['.includes(s[j])) depth++
    else if (')]'.includes(s[j]) && --depth === 0) return j + 1
  }
  return -1
}
/** The end of the unary expression starting at i, or -1 when it is not one this parser knows. */
function unaryEnd(s, i) {
  i = skipSpace(s, i)
  castRe.lastIndex = i
  const cast = castRe.exec(s)
  if (cast !== null) return unaryEnd(s, i + cast[0].length)
  if ('&*-~!'.includes(s[i])) return unaryEnd(s, i + 1)
  let j = -1
  if (s[i] === '(') j = closing(s, i)
  else { const m = /^(?:[A-Za-z_]\w*(?:::[A-Za-z_]\w*)*|\d\w*)/.exec(s.slice(i)); if (m !== null) j = i + m[0].length }
  while (j >= 0) {
    const k = skipSpace(s, j)
    if (s[k] === '(' || s[k] === '[') j = closing(s, k)
    else if (s.startsWith('->', k) || (s[k] === '.' && /[A-Za-z_]/.test(s[k + 1] ?? ''))) {
      const m = /^(?:->|\.)\s*[A-Za-z_]\w*/.exec(s.slice(k))
      j = m === null ? -1 : k + m[0].length
    } else return j
  }
  return -1
}
function checkCasts(s) {
  let out = '', from = 0, i = s.indexOf('(')
  while (i >= 0) {
    castRe.lastIndex = i
    const cast = castRe.exec(s), start = i + (cast?.[0].length ?? 0), end = cast === null ? -1 : unaryEnd(s, start)
    if (end < 0) { i = s.indexOf('(', i + 1); continue }
    const type = `${cast[1] ?? ''}${cast[2]}`
    out += `${s.slice(from, i)}emu_cast<${type}>(${checkCasts(s.slice(start, end))}, "${type}*")`
    from = end
    i = s.indexOf('(', end)
  }
  return out + s.slice(from)
}

const code = checkCasts(strip(text))
// parameter-list #defines of the source and of the headers it includes, followed transitively (NVRTC's headers are
// written beside the source), as kernels.ts reads them
const headers = new Map(), todo = [code]
while (todo.length > 0) {
  for (const m of todo.pop().matchAll(/^#include "([^"]+)"/gm)) {
    if (headers.has(m[1])) continue
    const path = join(dirname(src), m[1]), header = checkCasts(strip(readFileSync(path, 'utf8')))
    writeFileSync(path, header)   // the compile's own copy (fake.cpp writes the headers beside the source)
    headers.set(m[1], header)
    todo.push(headers.get(m[1]))
  }
}
const macros = new Map([...headers.values(), code].flatMap(t => [...t.matchAll(/^#define\s+(\w+)\s+(.*)$/gm)]).map(m => [m[1], m[2].trim()]))
const bounds = '(?:__launch_bounds__\\s*\\([^)]*\\)\\s+)?'
const re = new RegExp(`extern\\s+"C"\\s+__global__\\s+${bounds}void\\s+${bounds}(\\w+)\\s*\\(([^)]*)\\)`, 'g')

const tramps = []
for (const m of code.matchAll(re)) {
  const name = m[1]
  let list = m[2].trim()
  if (macros.has(list)) list = macros.get(list)
  const decls = list === '' ? [] : list.split(',').map(d => d.trim())
  const names = decls.map(d => d.split(/[\s*]+/).pop())
  tramps.push(`
extern "C" void llmemu_${name}(const void* buf, size_t size, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                               unsigned bz, unsigned shared) {
  struct Args { ${decls.map(d => d + ';').join(' ')} };
  Args a;
  // the real driver wants the end of the last parameter, no tail padding (sizeof(Args) may be larger)
  size_t need = ${names.length === 0 ? '0' : `(size_t)((const char*)&a.${names.at(-1)} - (const char*)&a) + sizeof a.${names.at(-1)}`};
  if (size != need) {
    std::fprintf(stderr, "emu: kernel ${name}: the host packed %zu argument bytes, its C parameters take %zu\\n", size, need);
    std::abort();
  }
  std::memcpy((void*)&a, buf, need);
  emu_launch("${name}", dim3{gx, gy, gz}, dim3{bx, by, bz}, shared, [&] { ${name}(${names.map(n => 'a.' + n).join(', ')}); });
}`)
}
if (tramps.length === 0) { console.error(`gen.mjs: no extern "C" kernels in ${src}`); process.exit(1) }
writeFileSync(out, `// generated by gen.mjs from ${src}\n${code}\n${tramps.join('\n')}\n`)
