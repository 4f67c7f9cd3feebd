// `llmts tokenize FILE`: the GPT-2 ids of a file's text (no end-of-text token added), space-separated or as
// JSON, encoded and printed a piece at a time (tokenize-stream.ts); `--decode` turns ids (whitespace/comma
// separated, a JSON array, or an llm.c .bin shard) back into text, written exactly (no added newline) so
// `tokenize f | tokenize --decode -` reproduces f.

import { readFileSync } from 'node:fs'
import { decode, VOCAB_SIZE } from '../tokenizer.js'
import { parseShard, SHARD_MAGIC } from '../data/shards.js'
import { statOrUndefined } from '../data/files.js'
import { InputError, shown } from '../util/errors.js'
import { formatHelp, jsonFlag, parseArgs } from './args.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'
import { printJson } from './output.js'
import { printFileIds } from './tokenize-stream.js'

const flags = {
  decode: { type: 'bool', help: 'FILE holds token ids (or is a .bin shard): print their text' },
  'allow-special': { type: 'bool', help: 'encode "<|endoftext|>" in the text as token 50256 (default: ordinary text)' },
  json: jsonFlag,
} as const

const summary = summaries.tokenize

function readInput(file: string): Buffer {
  if (file === '-') return readFileSync(0)
  checkFile(file)
  return readFileSync(file)
}

function checkFile(file: string): void {
  const st = statOrUndefined(file)
  if (st === undefined) throw new InputError(`llmts tokenize: no such file: ${file}`)
  if (!st.isFile()) throw new InputError(`llmts tokenize: ${file} is not a file`)
}

/** Ids from text: a JSON array (or {"ids": [...]}) or integers separated by whitespace and/or commas. */
function parseIds(text: string, file: string): number[] {
  const trimmed = text.trim()
  let items: unknown[]
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let v: unknown
    try { v = JSON.parse(trimmed) } catch (e) { throw new InputError(`llmts tokenize: ${file}: invalid JSON (${(e as Error).message})`) }
    const arr = Array.isArray(v) ? v : (v as { ids?: unknown }).ids
    if (!Array.isArray(arr)) throw new InputError(`llmts tokenize: ${file}: expected a JSON array of ids or {"ids": [...]}`)
    items = arr
  } else {
    items = trimmed === '' ? [] : trimmed.split(/[\s,]+/)
  }
  return items.map((item, i) => {
    const id = typeof item === 'number' ? item : typeof item === 'string' && /^\d+$/.test(item) ? Number(item) : NaN
    if (!Number.isInteger(id) || id < 0 || id >= VOCAB_SIZE) {
      throw new InputError(`llmts tokenize: ${file}: item ${i + 1} (${shown(item)}) is not a token id (expected integers 0..${VOCAB_SIZE - 1})`)
    }
    return id
  })
}

/** A .bin file is read as a shard (so a bad one gets the shard reader's error); so is anything with the magic,
 * stdin included (the magic's bytes are not UTF-8, so no text of ids starts with them). */
function isShard(file: string, data: Buffer): boolean {
  return file.endsWith('.bin') || (data.length >= 4 && data.readInt32LE(0) === SHARD_MAGIC)
}

export const command: Command = {
  name: 'tokenize',
  summary,
  usage: 'FILE [--decode] [--allow-special] [--json]   (FILE "-" reads stdin)',
  flags,
  async run(argv) {
    const p = parseArgs('llmts tokenize', flags, argv)
    if (p.help) { process.stdout.write(formatHelp('llmts tokenize', this.usage, summary, flags)); return 0 }
    if (p.positionals.length !== 1) {
      throw new InputError(`llmts tokenize: expected exactly one FILE, got ${p.positionals.length} (see llmts tokenize --help)`)
    }
    if (p.flags.decode && p.flags['allow-special']) {
      throw new InputError('llmts tokenize: --allow-special is for encoding text; --decode always prints token 50256 as <|endoftext|>')
    }
    const file = p.positionals[0]!
    if (!p.flags.decode) {
      if (file !== '-') checkFile(file)
      await printFileIds(file, { allowSpecial: p.flags['allow-special'], json: p.flags.json })
      return 0
    }
    const data = readInput(file)
    const where = file === '-' ? 'stdin' : file   // as the encoding errors name it
    const ids = isShard(file, data) ? parseShard(data, where) : parseIds(data.toString('utf8'), where)
    const text = decode(ids)
    if (p.flags.json) printJson({ tokens: ids.length, text })
    else process.stdout.write(text)
    return 0
  },
}
