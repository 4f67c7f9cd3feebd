// Output folders: makeDirs (mkdir -p that cannot loop forever) and checkOutputDir (refuses an --out that cannot
// be made, and leaves nothing behind); removeDeadTemps clears only the temp files of writers that are gone. The
// /proc cases run in a child process with a time limit, since Node 20's recursive mkdirSync spins there without
// returning.

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import {
  existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { checkOutputDir, makeDirs, removeDeadTemps, writeFileAtomic, writeTarget } from '../../src/util/atomic.js'
import { InputError } from '../../src/util/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'llmts-atomic-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const atomicJs = new URL('../../src/util/atomic.js', import.meta.url).href

test('makeDirs makes every missing folder, accepts existing ones, and throws on a file in the way', () => {
  const deep = join(dir, 'a', 'b', 'c')
  makeDirs(deep)
  assert.ok(statSync(deep).isDirectory())
  makeDirs(deep)   // already there: nothing to do
  makeDirs(join(dir, 'a'))
  writeFileSync(join(dir, 'file'), 'x')
  assert.throws(() => makeDirs(join(dir, 'file', 'x')), { code: 'ENOTDIR' })
  assert.throws(() => makeDirs(join(dir, 'file')), { code: 'EEXIST' }, 'a file where the folder should be')
})

test('checkOutputDir refuses a file on the path and leaves no folder when the path is fine', () => {
  assert.throws(() => checkOutputDir('cmd', '--out', join(dir, 'file', 'x')), { message: /^cmd: .*file \(in --out .*\) is not a directory/ })
  const before = readdirSync(dir).sort()
  checkOutputDir('cmd', '--out', join(dir, 'new', 'deeper'))
  assert.deepEqual(readdirSync(dir).sort(), before)
  assert.equal(existsSync(join(dir, 'new')), false)
})

test('a folder under /proc is refused at once, by makeDirs and by checkOutputDir', { skip: !existsSync('/proc/self') && 'no /proc here' }, () => {
  for (const call of ['makeDirs("/proc/llmts-test/x")', 'checkOutputDir("cmd", "--out", "/proc/llmts-test/x")']) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { makeDirs, checkOutputDir } from '${atomicJs}'; ` +
      `try { ${call}; console.log('made') } catch (e) { console.log('refused: ' + e.message) }`], { encoding: 'utf8', timeout: 20_000 })
    assert.equal(r.error, undefined, `${call}: ${r.error?.message} (it hung)`)
    assert.match(r.stdout, /^refused: /, `${call}: ${r.stdout}${r.stderr}`)
  }
})

test('a refused write names its destination, not the temp file beside it, and leaves no temp file', () => {
  const d = mkdtempSync(join(tmpdir(), 'llmts-atomic-dest-'))
  try {
    mkdirSync(join(d, 'plot.svg'))
    writeFileSync(join(d, 'file'), 'x')
    const cases: [string, RegExp][] = [
      [join(d, 'plot.svg'), /^cannot write .*plot\.svg: it is a directory$/],   // at the rename
      [join(d, 'file', 'x.svg'), /^cannot write .*file\/x\.svg: ENOTDIR \(.*file is not an existing folder\)$/],     // at the open
      // 250 bytes fit a file system's 255, not with the temp name's dot and .tmp-PID: the message names the output
      [join(d, `${'a'.repeat(246)}.svg`), new RegExp(`^cannot write .*/a{246}\\.svg: its name is too long \\(ENAMETOOLONG; the temp ` +
        `name written first, \\.a{246}\\.svg\\.tmp-${process.pid}, counts \\d+ bytes, over the file system's limit, usually 255\\)$`)],
    ]
    for (const [path, re] of cases) {
      assert.throws(() => writeFileAtomic(path, 'data'), (e: Error) => e instanceof InputError && re.test(e.message), path)
    }
    assert.deepEqual(readdirSync(d).sort(), ['file', 'plot.svg'], 'no temp file left')
    assert.deepEqual(readdirSync(join(d, 'plot.svg')), [])
  } finally {
    rmSync(d, { recursive: true, force: true })
  }
})

test("removeDeadTemps removes a dead writer's temp file and keeps a live writer's", () => {
  const d = mkdtempSync(join(tmpdir(), 'llmts-atomic-temps-'))
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' })
  try {
    const dead = spawnSync(process.execPath, ['-e', '']).pid   // exited and reaped: no such process now
    assert.ok(live.pid !== undefined && dead !== undefined)
    const names = [`.x.bin.tmp-${live.pid}`, `.x.bin.tmp-${dead}`, `.x.bin.tmp-${process.pid}`, `.other.json.tmp-${dead}`, 'x.bin']
    for (const n of names) writeFileSync(join(d, n), 'x')
    removeDeadTemps(d, name => name.endsWith('.bin'))
    assert.deepEqual(readdirSync(d).sort(), [`.other.json.tmp-${dead}`, `.x.bin.tmp-${live.pid}`, `.x.bin.tmp-${process.pid}`, 'x.bin'].sort())
  } finally {
    live.kill()
    rmSync(d, { recursive: true, force: true })
  }
})

test('a symbolic link is written through, as cp does: its target gets the data, the link stays; a dangling one is made', () => {
  const d = mkdtempSync(join(tmpdir(), 'llmts-atomic-link-'))
  try {
    mkdirSync(join(d, 'real'))
    writeFileSync(join(d, 'real', 'plot.svg'), 'old')
    symlinkSync('real/plot.svg', join(d, 'link.svg'))        // relative to the link's folder
    symlinkSync(join(d, 'link.svg'), join(d, 'chain.svg'))   // a link to a link
    symlinkSync('real/new.svg', join(d, 'dangling.svg'))
    writeFileAtomic(join(d, 'chain.svg'), 'new')
    writeFileAtomic(join(d, 'dangling.svg'), 'made')
    for (const [link, to] of [['link.svg', 'real/plot.svg'], ['chain.svg', join(d, 'link.svg')], ['dangling.svg', 'real/new.svg']]) {
      assert.ok(lstatSync(join(d, link)).isSymbolicLink(), `${link} is still a link`)
      assert.equal(readlinkSync(join(d, link)), to)
    }
    assert.deepEqual([readFileSync(join(d, 'real', 'plot.svg'), 'utf8'), readFileSync(join(d, 'real', 'new.svg'), 'utf8')], ['new', 'made'])
    assert.deepEqual(readdirSync(join(d, 'real')).sort(), ['new.svg', 'plot.svg'], 'no temp file left')
    assert.equal(writeTarget(join(d, 'real', 'plot.svg')), join(d, 'real', 'plot.svg'), 'a regular file is its own target')
  } finally {
    rmSync(d, { recursive: true, force: true })
  }
})

test('a link into a missing folder, or a loop of links, is a one-line InputError; nothing is written', () => {
  const d = mkdtempSync(join(tmpdir(), 'llmts-atomic-badlink-'))
  try {
    symlinkSync(join(d, 'gone', 'x.svg'), join(d, 'nowhere.svg'))
    symlinkSync(join(d, 'b.svg'), join(d, 'a.svg'))
    symlinkSync(join(d, 'a.svg'), join(d, 'b.svg'))
    assert.throws(() => writeFileAtomic(join(d, 'nowhere.svg'), 'x'), (e: Error) => e instanceof InputError && e.message ===
      `cannot write ${join(d, 'nowhere.svg')} (a symbolic link to ${join(d, 'gone', 'x.svg')}): ENOENT (${join(d, 'gone')} is not an existing folder)`)
    assert.throws(() => writeFileAtomic(join(d, 'a.svg'), 'x'), (e: Error) => e instanceof InputError &&
      e.message === `cannot write ${join(d, 'a.svg')}: too many levels of symbolic links (a loop?)`)
    assert.deepEqual(readdirSync(d).sort(), ['a.svg', 'b.svg', 'nowhere.svg'])
  } finally {
    rmSync(d, { recursive: true, force: true })
  }
})
