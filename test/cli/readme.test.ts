// README.md against the CLI's own flag tables (the ones parseArgs reads, walked from src/cli/commands.ts and each
// command's subcommands), so the two cannot drift apart: every command and each of its flags is named in the README
// section whose heading names the command (`llmts eval loss`), and every `llmts …` in the README's code, and every
// row of a command's flag table, names a command that exists and flags that it takes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { commands } from '../../src/cli/commands.js'
import type { Command } from '../../src/cli/command.js'
import { packageRoot } from '../../src/util/package.js'

/** Every command by its path as typed ('train', 'eval loss', 'prepare fineweb'). */
async function commandTree(): Promise<Map<string, Command>> {
  const tree = new Map<string, Command>()
  for (const [name, load] of Object.entries(commands)) {
    const { command } = await load()
    tree.set(name, command)
    for (const [sub, loadSub] of Object.entries(command.subcommands ?? {})) tree.set(`${name} ${sub}`, (await loadSub()).command)
  }
  return tree
}

interface Code { code: string; line: number }                    // line: 1-based, where the code starts
interface Heading { line: number; level: number; spans: string[] }

/** The README's code (fenced lines, `\` continuations joined; inline spans, also across line breaks) and headings. */
function parseMarkdown(text: string): { code: Code[]; headings: Heading[]; lines: string[] } {
  const lines = text.split('\n')
  const code: Code[] = [], headings: Heading[] = []
  let fenced = false, prose: string[] = [], proseStart = 0
  const flushProse = (): void => {
    const chunk = prose.join('\n')
    for (const m of chunk.matchAll(/`([^`]+)`/g)) {
      code.push({ code: m[1]!.replace(/\n/g, ' '), line: proseStart + 1 + (chunk.slice(0, m.index).match(/\n/g)?.length ?? 0) })
    }
    prose = []
  }
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!
    if (/^\s*```/.test(l)) { if (!fenced) flushProse(); fenced = !fenced; proseStart = i + 1; continue }
    if (fenced) {
      let joined = l, start = i
      while (joined.endsWith('\\') && i + 1 < lines.length) joined = joined.slice(0, -1) + ' ' + lines[++i]!
      code.push({ code: joined, line: start + 1 })
      continue
    }
    const h = /^(#+) (.*)/.exec(l)
    if (h !== null) headings.push({ line: i + 1, level: h[1]!.length, spans: [...h[2]!.matchAll(/`([^`]+)`/g)].map(m => m[1]!) })
    prose.push(l)
  }
  flushProse()
  return { code, headings, lines }
}

interface Invocation { path: string; flags: string[] }

/** The `llmts …` commands in one piece of code; `llmts train: …` (a message) and placeholders (`llmts <command>`,
 *  `llmts COMMAND`) are not commands. path '' is `llmts --help` and the like. A path the tree lacks comes back as
 *  typed, for the caller to refuse. */
function invocations(code: string, tree: Map<string, Command>): Invocation[] {
  const out: Invocation[] = []
  for (const m of code.matchAll(/(?<![\w/.-])llmts( [^|;&>#]*)?(?![\w/.:-])/g)) {
    if (/^ [a-z]+( [a-z]+)?:/.test(m[1] ?? '')) continue   // `llmts eval loss: shards: …`, a message
    const words = (m[1] ?? '').trim().split(/\s+/).filter(w => w !== '')
    let path = ''
    if (words[0] !== undefined && !words[0].startsWith('--')) {
      if (!/^[a-z]+$/.test(words[0])) continue
      path = words.shift()!
      // a subcommand; or, for a command that has only subcommands (eval), whatever comes next (a typo is refused)
      const sub = words[0], subs = tree.get(path)?.subcommands
      if (sub !== undefined && !sub.startsWith('-') && subs !== undefined &&
          (Object.hasOwn(subs, sub) || Object.keys(tree.get(path)!.flags).length === 0)) path += ` ${words.shift()!}`
    }
    out.push({ path, flags: words.flatMap(w => /^--([a-z][a-z0-9-]*)/.exec(w)?.[1] ?? []) })
  }
  return out
}

/** The README text of each command: the sections (heading to the next of its level or above) whose heading has a
 *  code span naming the command; a section inside another that names it too is the command's, not the outer one
 *  (`## Data: … `llmts tokenize`, `llmts prepare`` holds `### `llmts tokenize``). */
function sections(md: ReturnType<typeof parseMarkdown>, tree: Map<string, Command>): Map<string, { text: string; line: number }[]> {
  const ranges = md.headings.map((h, k) => {
    const next = md.headings.slice(k + 1).find(n => n.level <= h.level)
    return { h, end: next === undefined ? md.lines.length : next.line - 1 }
  })
  const out = new Map<string, { text: string; line: number }[]>()
  for (const path of tree.keys()) {
    const named = ranges.filter(r => r.h.spans.some(s => invocations(s, tree).some(i => i.path === path)))
    const innermost = named.filter(r => !named.some(o => o !== r && o.h.line > r.h.line && o.h.line <= r.end))
    out.set(path, innermost.map(r => ({ text: md.lines.slice(r.h.line - 1, r.end).join('\n'), line: r.h.line })))
  }
  return out
}

/** The first cells of the rows of the section's flag tables (header `| flag | …`), where a flag is documented. */
function flagTable(section: string): string[] {
  const cells: string[] = []
  let inTable = false
  for (const row of section.split('\n')) {
    if (/^\| *flag *\|/.test(row)) inTable = true
    else if (!row.startsWith('|')) inTable = false
    else if (inTable) cells.push(row.split(/(?<!\\)\|/)[1] ?? '')
  }
  return cells
}

const topFlags = ['help', 'version']   // main.ts: `llmts --help`, `llmts --version`

const readme = (): string => readFileSync(join(packageRoot(), 'README.md'), 'utf8')

test('README: every command has a section, and every flag is named in its section', async () => {
  const tree = await commandTree()
  const md = parseMarkdown(readme())
  const secs = sections(md, tree)
  const problems: string[] = []
  for (const [path, command] of tree) {
    if (command.subcommands !== undefined && Object.keys(command.flags).length === 0) continue   // `eval`: only its evaluations
    const found = secs.get(path)!
    if (found.length === 0) { problems.push(`no heading names \`llmts ${path}\` (a heading with it in backticks starts its section)`); continue }
    const at = found.map(s => s.line).join(', ')
    const table = found.flatMap(s => flagTable(s.text)).join('\n')
    const [text, where] = table !== '' ? [table, 'flag table'] : [found.map(s => s.text).join('\n'), 'section']
    for (const flag of Object.keys(command.flags)) {
      if (!new RegExp(`--${flag}(?![\\w-])`).test(text)) problems.push(`\`llmts ${path}\` (${where} at line ${at}) does not name --${flag}`)
    }
  }
  assert.deepEqual(problems, [], `README.md does not document the CLI:\n${problems.join('\n')}`)
})

test('README: every `llmts …` in its code names a command that exists and flags that command takes', async () => {
  const tree = await commandTree()
  const problems: string[] = []
  let seen = 0
  for (const { code, line } of parseMarkdown(readme()).code) {
    for (const { path, flags } of invocations(code, tree)) {
      seen++
      const command = tree.get(path)
      if (path !== '' && command === undefined) { problems.push(`line ${line}: \`${code.trim()}\`: no command "${path}"`); continue }
      const known = command === undefined ? topFlags : [...Object.keys(command.flags), 'help']
      for (const flag of flags.filter(f => !known.includes(f))) {
        problems.push(`line ${line}: \`${code.trim()}\`: llmts ${path} takes no --${flag}`)
      }
    }
  }
  assert.ok(seen >= 50, `found only ${seen} llmts commands in README.md: the parser no longer reads it`)
  assert.deepEqual(problems, [], `README.md names commands or flags the CLI does not have:\n${problems.join('\n')}`)
})

test('README: the flags in a command\'s flag table ("| flag | …") are flags of that command', async () => {
  const tree = await commandTree()
  const problems: string[] = []
  let rows = 0
  for (const [path, found] of sections(parseMarkdown(readme()), tree)) {
    const known = Object.keys(tree.get(path)!.flags)
    for (const { text, line } of found) {
      for (const m of flagTable(text).join(' ').matchAll(/--([a-z][a-z0-9-]*)/g)) {
        rows++
        if (!known.includes(m[1]!)) problems.push(`\`llmts ${path}\` (section at line ${line}): its flag table names --${m[1]!}, which it does not take`)
      }
    }
  }
  assert.ok(rows >= 40, `found only ${rows} flags in README.md's flag tables: the parser no longer reads them`)
  assert.deepEqual(problems, [], problems.join('\n'))
})

/** The text of every file under `dir` whose name ends with one of `exts`. */
function texts(dir: string, exts: string[]): { path: string; text: string }[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter(name => exts.some(x => name.endsWith(x)))
    .map(name => ({ path: join(dir, name), text: readFileSync(join(dir, name), 'utf8') }))
}

test('README: every LLMTS_* variable the code reads is documented, and every one the README names exists', () => {
  const root = packageRoot()
  const text = readme()
  const documented = new Set(text.match(/LLMTS_[A-Z0-9_]+/g) ?? [])
  // a name in quotes in src/ is one the code reads from (or sets in) the environment; macros (-DLLMTS_NVRTC) are not
  const read = new Map<string, string>()
  for (const { path, text: src } of texts(join(root, 'src'), ['.ts'])) {
    for (const m of src.matchAll(/['"`](LLMTS_[A-Z0-9_]+)['"`]/g)) read.set(m[1]!, path.slice(root.length + 1))
  }
  assert.ok(read.size >= 10, `found only ${read.size} LLMTS_ variables in src/: the pattern no longer matches`)
  const undocumented = [...read].filter(([name]) => !documented.has(name)).map(([name, path]) => `${name} (read in ${path})`)
  assert.deepEqual(undocumented, [], `README.md does not name ${undocumented.join(', ')}`)
  // tests, benchmarks and scripts read some (the CUDA emulator's, the Python checks'): any mention there counts
  const code = ['src', 'test', 'bench', 'scripts', 'reference'].flatMap(d => texts(join(root, d), ['.ts', '.mjs', '.py', '.sh', '.cu', '.cuh', '.c']))
    .map(f => f.text).join('\n')
  const unknown = [...documented].filter(name => !new RegExp(`${name}(?![A-Z0-9_])`).test(code))
  assert.deepEqual(unknown, [], `README.md names variables no code reads: ${unknown.join(', ')}`)
})

test('--seed has one help text where it means the same (the weights of a model that has none); train and sample say what else it seeds', async () => {
  const help = new Map<string, string>()
  for (const [path, c] of await commandTree()) {
    const seed = (c.flags as Record<string, { help?: string }>)['seed']
    if (seed?.help !== undefined) help.set(path, seed.help)
  }
  const init = 'weight initialization seed for a preset or config without weights'
  assert.deepEqual(Object.fromEntries(help), {
    train: 'seed of the weight initialization, the periodic samples and the --shuffle on data order',
    sample: `sampling seed; also the ${init}`,
    export: init, 'eval loss': init, 'eval hellaswag': init,
  })
})
