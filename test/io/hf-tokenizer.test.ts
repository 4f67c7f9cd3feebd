// The exported GPT-2 tokenizer files: 50,257 tokens and 50,000 merges recovered from gpt-tokenizer's ranks.
// Truths: OpenAI's encoder.json / vocab.bpe in ../shared (skipped when absent), and an independent BPE run
// over our vocab.json + merges.txt that must reproduce gpt-tokenizer's token ids on real text.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { encode } from 'gpt-tokenizer/encoding/r50k_base'
import { gpt2TokenizerFiles } from '../../src/io/hf-tokenizer.js'

const files = gpt2TokenizerFiles({ modelMaxLength: 1024 })
const vocab = JSON.parse(files['vocab.json']!) as Record<string, number>
const mergeLines = files['merges.txt']!.split('\n')

test('vocab.json has 50,257 distinct ids in order, merges.txt 50,000 merges, tokenizer.json the same', () => {
  const entries = Object.entries(vocab)
  assert.equal(entries.length, 50257)
  assert.deepEqual(new Set(Object.values(vocab)).size, 50257)
  assert.equal(vocab['<|endoftext|>'], 50256)
  assert.equal(vocab['Ġthe'], 262)
  assert.equal(mergeLines[0], '#version: 0.2')
  assert.equal(mergeLines.at(-1), '', 'ends with a newline')
  const merges = mergeLines.slice(1, -1)
  assert.equal(merges.length, 50000)
  assert.equal(merges[0], 'Ġ t')
  const tj = JSON.parse(files['tokenizer.json']!)
  assert.deepEqual(tj.model.vocab, vocab)
  assert.deepEqual(tj.model.merges, merges)
  assert.equal(tj.model.type, 'BPE')
  assert.equal(tj.pre_tokenizer.type, 'ByteLevel')
  assert.deepEqual(tj.added_tokens.map((x: { id: number; content: string }) => [x.id, x.content]), [[50256, '<|endoftext|>']])
  const cfg = JSON.parse(files['tokenizer_config.json']!)
  assert.deepEqual([cfg.tokenizer_class, cfg.eos_token, cfg.model_max_length], ['GPT2Tokenizer', '<|endoftext|>', 1024])
  assert.equal(JSON.parse(files['special_tokens_map.json']!).eos_token, '<|endoftext|>')
})

test('the settings that change ids or decoding are those of the hub\'s gpt2 tokenizer files', () => {
  // Behaviour checked with transformers 5.17 and tokenizers 0.23 by reference/hf_load_check.py: add_prefix_space true
  // changes the first id of every text; special false keeps <|endoftext|> in decode(skip_special_tokens=True).
  const eot = { content: '<|endoftext|>', lstrip: false, normalized: true, rstrip: false, single_word: false, special: true }
  const tj = JSON.parse(files['tokenizer.json']!)
  assert.deepEqual(tj.added_tokens, [{ id: 50256, ...eot }])
  assert.deepEqual(tj.pre_tokenizer, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true })
  assert.deepEqual(tj.decoder, { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true })
  assert.equal(tj.normalizer, null)
  const cfg = JSON.parse(files['tokenizer_config.json']!)
  assert.deepEqual([cfg.add_prefix_space, cfg.add_bos_token, cfg.bos_token, cfg.unk_token], [false, false, '<|endoftext|>', '<|endoftext|>'])
  assert.deepEqual(cfg.added_tokens_decoder, { 50256: eot })
})

test('vocab.json and merges.txt equal OpenAI\'s GPT-2 encoder.json and vocab.bpe', t => {
  const dir = resolve(process.cwd(), '../shared/data/gpt2')
  if (!existsSync(resolve(dir, 'encoder.json'))) { t.skip(`${dir} is absent`); return }
  assert.deepEqual(vocab, JSON.parse(readFileSync(resolve(dir, 'encoder.json'), 'utf8')))
  assert.equal(files['merges.txt'], readFileSync(resolve(dir, 'vocab.bpe'), 'utf8'))
})

/** Byte-level BPE as Hugging Face's BPE model applies merges.txt: lowest merge rank first. */
function bpeEncode(text: string): number[] {
  const byteChar: string[] = []
  for (let b = 0, n = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)
    byteChar.push(String.fromCodePoint(printable ? b : 256 + n++))
  }
  const mergeRank = new Map(mergeLines.slice(1, -1).map((m, i) => [m, i]))
  const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu
  const ids: number[] = []
  for (const [word] of text.matchAll(pat)) {
    let parts = [...new TextEncoder().encode(word)].map(b => byteChar[b]!)
    for (;;) {
      let best = -1, bestRank = Infinity
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = mergeRank.get(`${parts[i]} ${parts[i + 1]}`)
        if (r !== undefined && r < bestRank) { bestRank = r; best = i }
      }
      if (best < 0) break
      parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)]
    }
    for (const p of parts) ids.push(vocab[p]!)
  }
  return ids
}

test('BPE with the exported vocab and merges reproduces gpt-tokenizer\'s ids', () => {
  const text = 'First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n' +
    'Héllo wörld — naïve café, 日本語のテキスト, emoji 🤖🚀, numbers 1234567 and 3.14159; don\'t they\'ll\n\t  tabs   and  spaces ' +
    'antidisestablishmentarianism pneumonoultramicroscopic <html><body class="x">&amp;</body></html> {"json": [1, 2]}'
  assert.deepEqual(bpeEncode(text), encode(text))
})
