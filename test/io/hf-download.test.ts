// `llmts download` against a local hub look-alike (test/helpers/http-fault-server.ts, model layout): the revision
// pinned to its commit; only the files llm.ts and transformers need are fetched (config.json first), byte for
// byte, resuming a cut; the directory loads to the same weights as the original; sharded weights; files of
// another model already in --out are replaced, not kept; refusals (architecture, no safetensors, no config, a
// missing repository, a bad name, a corrupt header, a .json that does not parse) before the big download, leaving
// --out as it was (a new --out not created).

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkRepoName, downloadHfModel, type ModelDownloadOptions, type ModelListing } from '../../src/io/hf-download.js'
import { loadHfDir } from '../../src/io/hf.js'
import { resolveModel } from '../../src/model/load.js'
import { readSafetensors, writeSafetensors } from '../helpers/safetensors.js'
import { InputError } from '../../src/util/errors.js'
import { formatBytes } from '../../src/util/progress.js'
import { start } from '../faults/helpers.js'
import { COMMIT, startFaultServer, type FaultServer, type ServedFile } from '../helpers/http-fault-server.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-hf-download-'))
after(() => rmSync(root, { recursive: true, force: true }))
const fixture = (name: string): string => fileURLToPath(new URL(`../../../test/fixtures/${name}`, import.meta.url))
const fast = { backoffMs: 1, maxBackoffMs: 5, maxRetries: 4, idleTimeoutMs: 5000 }
const REPO = 'someone/tiny-gpt2'

function servedDir(dir: string, names: string[]): ServedFile[] {
  return names.map(n => ({ path: n, data: new Uint8Array(readFileSync(join(dir, n))) }))
}

let outs = 0
async function download(files: ServedFile[], opts: Partial<ModelDownloadOptions> & { pageSize?: number } = {}):
  Promise<{ server: FaultServer; out: string; error: unknown; commit?: string }> {
  const server = await startFaultServer({ repo: REPO, dir: '', kind: 'model', files,
    ...(opts.pageSize === undefined ? {} : { pageSize: opts.pageSize }) })
  const out = opts.outDir ?? join(root, `out${outs++}`)
  try {
    const r = await downloadHfModel({ repo: REPO, outDir: out, baseUrl: server.baseUrl, http: fast, workers: 2, ...opts })
      .then(x => ({ commit: x.commit }), (e: unknown) => ({ error: e }))
    return { server, out, error: undefined, ...r }
  } finally {
    await server.close()
  }
}

const cdn = (server: FaultServer): string[] => server.requests.filter(r => r.url.startsWith('/cdn/'))
  .map(r => decodeURIComponent(r.url.slice(5).split('?')[0]!))

test('fetches config.json first, then the weights and tokenizer files only; the directory loads as the original', async () => {
  const gpt2 = servedDir(fixture('hf-gpt2'), ['config.json', 'model.safetensors'])
  gpt2[0]!.sha256 = null                   // outside LFS, as on the hub: checked by its git blob id
  gpt2[1]!.faults = { cutAfter: [3000] }   // the first weights request is cut: resumed with Range
  const others: ServedFile[] = [
    { path: 'tokenizer.json', data: new TextEncoder().encode('{"model": {}}') },
    { path: 'pytorch_model.bin', data: new Uint8Array(5000).fill(7) },
    { path: 'README.md', data: new TextEncoder().encode('# a model card'), sha256: null },
  ]
  const { server, out, error, commit } = await download([...others, ...gpt2], { token: 'hf_secret', pageSize: 2 })
  assert.equal(error, undefined)
  assert.equal(commit, COMMIT, 'every file comes from the commit main resolved to (the server serves no other)')
  assert.deepEqual(readdirSync(out).sort(), ['config.json', 'model.safetensors', 'tokenizer.json'])
  for (const f of [...gpt2, others[0]!]) assert.ok(readFileSync(join(out, f.path)).equals(f.data), `${f.path} byte for byte`)
  const fetched = cdn(server)
  assert.equal(fetched[0], 'config.json', 'the architecture is checked before any weight')
  assert.ok(!fetched.includes('pytorch_model.bin') && !fetched.includes('README.md'), `fetched ${fetched.join(', ')}`)
  assert.ok(server.requests.some(r => r.range !== undefined && r.url.includes('model.safetensors')), 'the cut file resumed by Range')
  assert.ok(server.requests.every(r => r.authorization === 'Bearer hf_secret'))
  const a = loadHfDir(fixture('hf-gpt2')), b = loadHfDir(out)
  assert.deepEqual(b.config, a.config)
  assert.ok(Buffer.from(b.params.buffer).equals(Buffer.from(a.params.buffer)))
})

test('sharded weights: the index first, then every shard it names', async () => {
  const src = readSafetensors(join(fixture('hf-llama'), 'model.safetensors'))
  const names = [...src.tensors.keys()].sort()
  const map: Record<string, string> = {}
  const halves = [names.slice(0, names.length >> 1), names.slice(names.length >> 1)]
  halves.forEach((part, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`
    writeSafetensors(join(root, file), part.map(n => {
      const t = src.tensors.get(n)!
      map[n] = file
      return { name: n, dtype: t.dtype, shape: t.shape, data: t.bytes }
    }))
  })
  writeFileSync(join(root, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: map }))
  const files = [...servedDir(fixture('hf-llama'), ['config.json']),
    ...servedDir(root, ['model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'])]
  let listing: ModelListing | undefined, totalFiles = -1
  const { server, out, error } = await download(files, { onListing: l => { listing = l }, onProgress: q => { totalFiles = q.totalFiles } })
  assert.equal(error, undefined)
  assert.deepEqual(cdn(server).slice(0, 2).sort(), ['config.json', 'model.safetensors.index.json'])
  // the listing's two parts: what came first, and the files the progress counts (config.json is not among them)
  assert.deepEqual([listing!.read.map(f => f.path), listing!.rest.map(f => f.path).sort(), totalFiles],
    [['config.json', 'model.safetensors.index.json'], ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'], 2])
  const a = loadHfDir(fixture('hf-llama')), b = loadHfDir(out)
  assert.ok(Buffer.from(b.params.buffer).equals(Buffer.from(a.params.buffer)))
})

test('an index naming a shard outside the folder is refused before any shard is fetched', async () => {
  for (const [i, bad] of ['../model.safetensors', 'sub/x.safetensors', '..\\x.safetensors', '..'].entries()) {
    const index = { path: 'model.safetensors.index.json', data: new TextEncoder().encode(JSON.stringify({ weight_map: { w: bad } })) }
    const outDir = join(root, `outside${i}`, 'out')
    const { server, out, error } = await download([...servedDir(fixture('hf-llama'), ['config.json']), index], { outDir })
    assert.ok(error instanceof InputError && error.message.includes(`bad shard file name for w: "${bad.replace(/\\/g, '\\\\')}"`),
      `${bad}: ${String(error)}`)
    assert.deepEqual(cdn(server).sort(), ['config.json', 'model.safetensors.index.json'], bad)
    assert.ok(!existsSync(join(out, '..')), `${bad}: the two folders made for --out (outside${i}/out) are gone`)
  }
})

test('a folder holding another model: its files are replaced (same sizes, other bytes), a stray single file refused', async () => {
  const a = servedDir(fixture('hf-gpt2'), ['config.json', 'model.safetensors'])
  a[0]!.sha256 = null
  const first = await download(a)
  assert.equal(first.error, undefined)
  // a fine-tune of the same shape: the same sizes, other bytes (a config number and the last weight byte)
  const text = new TextDecoder().decode(a[0]!.data)
  const b: ServedFile[] = [
    { path: 'config.json', data: new TextEncoder().encode(text.replace('"layer_norm_epsilon": 1e-05', '"layer_norm_epsilon": 2e-05')), sha256: null },
    { path: 'model.safetensors', data: Uint8Array.from(a[1]!.data, (x, i) => i === a[1]!.data.length - 1 ? x ^ 1 : x) },
  ]
  assert.ok(b[0]!.data.length === a[0]!.data.length && !Buffer.from(b[0]!.data).equals(a[0]!.data))
  const second = await download(b, { outDir: first.out })
  assert.equal(second.error, undefined)
  for (const f of b) assert.ok(readFileSync(join(first.out, f.path)).equals(f.data), `${f.path} is the new repository's`)
  assert.deepEqual(cdn(second.server).sort(), ['config.json', 'model.safetensors'])
  // sharded weights into a folder with a model.safetensors the repository lacks: it would shadow the shards
  const index = { path: 'model.safetensors.index.json', data: new TextEncoder().encode('{"weight_map": {}}') }
  const third = await download([b[0]!, index], { outDir: first.out })
  assert.ok(third.error instanceof InputError &&
    /holds a model\.safetensors that someone\/tiny-gpt2 \(sharded weights\) does not have/.test(third.error.message), String(third.error))
  assert.deepEqual(cdn(third.server), [], 'refused before any download')
})

test('a download over another model that stops in the weights leaves no config.json beside them; the rerun finishes', async () => {
  const a = servedDir(fixture('hf-gpt2'), ['config.json', 'model.safetensors'])
  const first = await download(a)
  assert.equal(first.error, undefined)
  // a fine-tune of the same shape (other config values, other last weight byte) whose weights fail to arrive
  const text = new TextDecoder().decode(a[0]!.data).replace('"layer_norm_epsilon": 1e-05', '"layer_norm_epsilon": 2e-05')
  const weights = Uint8Array.from(a[1]!.data, (x, i) => i === a[1]!.data.length - 1 ? x ^ 1 : x)
  const b = (faults: ServedFile['faults']): ServedFile[] => [{ path: 'config.json', data: new TextEncoder().encode(text) },
    { path: 'model.safetensors', data: weights, ...(faults ? { faults } : {}) }]
  const cut = await download(b({ status: Array<number>(20).fill(500) }), { outDir: first.out })
  assert.ok(cut.error !== undefined, 'the weights never arrived')
  // neither config describes the weights there: none is, and the folder says why
  assert.ok(!existsSync(join(first.out, 'config.json')))
  assert.throws(() => resolveModel(first.out), (e: Error) => e instanceof InputError &&
    e.message === `model: ${first.out} is an unfinished llmts download (its config.json comes last, after the weights): ` +
    'run the same llmts download again to finish it')
  const rerun = await download(b(undefined), { outDir: first.out })
  assert.equal(rerun.error, undefined)
  assert.ok(readFileSync(join(first.out, 'config.json')).equals(new TextEncoder().encode(text)))
  assert.ok(readFileSync(join(first.out, 'model.safetensors')).equals(weights))
  assert.ok(!readdirSync(first.out).includes('.llmts-download'), 'the staging folder goes once the download is whole')
  assert.equal(resolveModel(first.out).config.normEps, 2e-5)
})

test('refusals: another architecture (before the weights, --out untouched), no safetensors, no config.json, a corrupt header', async () => {
  const gpt2 = servedDir(fixture('hf-gpt2'), ['config.json', 'model.safetensors'])
  const config = JSON.parse(new TextDecoder().decode(gpt2[0]!.data)) as Record<string, unknown>
  const mistral = { path: 'config.json', data: new TextEncoder().encode(JSON.stringify({ ...config, model_type: 'mistral' })) }
  const working = join(root, 'working')
  cpSync(fixture('hf-llama'), working, { recursive: true })
  const cases: [ServedFile[], RegExp, string[]?][] = [
    [[mistral, gpt2[1]!], /^hf: someone\/tiny-gpt2\/config\.json: unsupported model_type "mistral"/, ['model.safetensors']],
    [[gpt2[0]!, { path: 'pytorch_model.bin', data: new Uint8Array(10) }],
      /has no safetensors weights .*; it holds pytorch_model\.bin, which llm\.ts does not read/, ['config.json']],
    [[gpt2[1]!], /has no config\.json at its top level/],
    [[gpt2[0]!, { path: 'model.safetensors', data: new Uint8Array(100).fill(255), sha256: null }],
      /model\.safetensors is not a whole safetensors file: header length \d+ exceeds the file size 100/],
  ]
  for (const [files, re, neverFetched] of cases) {
    const { server, error } = await download(files, neverFetched?.[0] === 'model.safetensors' ? { outDir: working } : {})
    assert.ok(error instanceof InputError && re.test(error.message), `${String(error)} vs ${re}`)
    for (const n of neverFetched ?? []) assert.ok(!cdn(server).includes(n), `${n} was not fetched`)
  }
  assert.deepEqual(readdirSync(working).sort(), readdirSync(fixture('hf-llama')).sort(), 'the refused download left --out as it was')
  assert.deepEqual(loadHfDir(working).config, loadHfDir(fixture('hf-llama')).config)
  const server = await startFaultServer({ repo: 'other/model', dir: '', kind: 'model', files: [] })
  try {
    await assert.rejects(downloadHfModel({ repo: REPO, outDir: join(root, 'missing'), baseUrl: server.baseUrl, http: fast }),
      /^InputError: download: GET .*\/api\/models\/someone\/tiny-gpt2\/revision\/main \(the revision\) failed with HTTP 401 .*not there, or private: check the repository name someone\/tiny-gpt2.*set HF_TOKEN/)
  } finally {
    await server.close()
  }
  // a mirror whose revision info has no "sha": the revision name is used as it is
  const trimmed = await startFaultServer({ repo: REPO, dir: '', kind: 'model', trimmedInfo: true, revision: 'refs/pr/1',
    files: servedDir(fixture('hf-gpt2'), ['config.json', 'model.safetensors']) })
  try {
    const r = await downloadHfModel({ repo: REPO, revision: 'refs/pr/1', outDir: join(root, 'trimmed'), baseUrl: trimmed.baseUrl, http: fast })
    assert.equal(r.commit, 'refs/pr/1')
    assert.ok(trimmed.requests.some(q => q.url.startsWith(`/${REPO}/resolve/refs%2Fpr%2F1/model.safetensors`)), 'resolved under the encoded revision')
  } finally {
    await trimmed.close()
  }
  for (const bad of ['', '../etc', 'a/b/c', 'owner/na me', '-x/y']) assert.throws(() => checkRepoName(bad),
    /is not a Hugging Face model repository name/, bad)
  for (const good of ['gpt2', 'openai-community/gpt2', 'meta-llama/Llama-3.2-1B', 'a_b/c.d']) checkRepoName(good)
})

test('a refused download into a new --out leaves no folder behind; one into an existing folder leaves it', async () => {
  const gpt2 = servedDir(fixture('hf-gpt2'), ['config.json', 'model.safetensors'])
  const config = JSON.parse(new TextDecoder().decode(gpt2[0]!.data)) as Record<string, unknown>
  const mistral = { path: 'config.json', data: new TextEncoder().encode(JSON.stringify({ ...config, model_type: 'mistral' })) }
  const fresh = await download([mistral, gpt2[1]!])
  assert.ok(fresh.error instanceof InputError && /unsupported model_type "mistral"/.test(fresh.error.message), String(fresh.error))
  assert.ok(!existsSync(fresh.out), `${fresh.out} was created for the staging folder and must be gone`)
  const empty = join(root, 'empty-out')
  mkdirSync(empty)
  const kept = await download([mistral, gpt2[1]!], { outDir: empty })
  assert.ok(kept.error instanceof InputError, String(kept.error))
  assert.deepEqual(readdirSync(empty), [], 'the folder the user made is kept, and empty')
})

test('a fetched .json that does not parse (cut short on the server) is refused and removed', async () => {
  const gpt2 = servedDir(fixture('hf-gpt2'), ['config.json', 'model.safetensors'])
  const cut = (f: ServedFile): ServedFile => ({ path: f.path, data: f.data.subarray(0, f.data.length >> 1) })   // listed as served
  const tokenizer: ServedFile = { path: 'tokenizer.json', data: new TextEncoder().encode('{"model": {"vocab": {"a": 0, "b": 1}}}') }
  for (const [files, name] of [[[gpt2[0]!, gpt2[1]!, cut(tokenizer)], 'tokenizer.json'], [[cut(gpt2[0]!), gpt2[1]!], 'config.json']] as const) {
    const { out, error } = await download([...files])
    assert.ok(error instanceof InputError, `${name}: ${String(error)}`)
    assert.match(error.message, new RegExp(`^download: ${name.replace('.', '\\.')} is not valid JSON: .* \\(it was removed, run the command again`))
    for (const p of [name, `${name}.part`, join('.llmts-download', name)]) assert.ok(!existsSync(join(out, p)), `${p} was removed`)
  }
})

test('llmts download: the CLI fills --out, prints JSON, and refuses bad arguments with one line, exit 2', async () => {
  const server = await startFaultServer({ repo: REPO, dir: '', kind: 'model',
    files: servedDir(fixture('hf-gpt2'), ['config.json', 'model.safetensors']) })
  try {
    const out = join(root, 'cli')
    const r = await start(['download', REPO, '--out', out, '--base-url', server.baseUrl, '--json']).done
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout) as { repo: string; commit: string; family: string; files: { path: string }[] }
    assert.deepEqual([j.repo, j.commit, j.family, j.files.map(f => f.path)], [REPO, COMMIT, 'gpt2', ['config.json', 'model.safetensors']])
    // the listing counts what the progress counts: model.safetensors, after config.json
    const bytes = statSync(join(fixture('hf-gpt2'), 'model.safetensors')).size
    assert.match(r.stderr, new RegExp(`GPT2LMHeadModel, 2 layers, d=\\d+\\): config\\.json read, then 1 file, ${formatBytes(bytes)}\n`))
    assert.match(r.stderr, /^download: 100% 1\/1 files, /m)
    const again = await start(['download', REPO, '--out', out, '--base-url', server.baseUrl]).done
    assert.equal(again.code, 0, again.stderr)
    assert.equal(cdn(server).filter(p => p === 'model.safetensors').length, 1, 'a second run keeps the complete files')
    mkdirRun(join(root, 'run'))
    const bad: [string[], RegExp][] = [
      [['download'], /which repository\?/],
      [['download', REPO], /--out DIR is required/],
      [['download', REPO, 'extra', '--out', out], /unexpected argument "extra"/],
      [['download', 'not a repo', '--out', out], /is not a Hugging Face model repository name/],
      [['download', REPO, '--out', join(root, 'run')], /is a training run or checkpoint directory/],
      [['download', REPO, '--out', out, '--base-url', 'ftp://x'], /--base-url "ftp:\/\/x" must be http or https/],
      // refused before the network: the port would only time out
      [['download', REPO, '--out', join(out, 'config.json', 'x'), '--base-url', 'http://192.0.2.1:9'],
        /config\.json \(in --out .*\) is not a directory/],
    ]
    for (const [args, re] of bad) {
      const b = await start(args).done
      assert.equal(b.code, 2, `${args.join(' ')}: ${b.stderr}`)
      assert.match(b.stderr, re)
      assert.equal(b.stderr.trim().split('\n').length, 1, b.stderr)
    }
  } finally {
    await server.close()
  }
})

/** A training run's directory, as far as refusing it goes: a log.jsonl. */
function mkdirRun(dir: string): void {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'log.jsonl'), '')
}

test('llmts download: Ctrl-C during the weights ends with exit 130 and one line; no model.safetensors under its name', async () => {
  const files = servedDir(fixture('hf-gpt2'), ['config.json', 'model.safetensors'])
  files[1]!.faults = { bytesPerSecond: 4000 }   // 120 kB: half a minute, time enough to be interrupted
  const server = await startFaultServer({ repo: REPO, dir: '', kind: 'model', files })
  try {
    const out = join(root, 'interrupted')
    let sent = false
    const r = await start(['download', REPO, '--out', out, '--base-url', server.baseUrl], {
      onStderr: (text, child) => { if (!sent && text.includes('config.json read')) { sent = true; child.kill('SIGINT') } },
    }).done
    assert.equal(r.code, 130, r.stderr)   // as a process ended by SIGINT: scripts see it did not finish
    assert.match(r.stderr, /^llmts download: interrupted; run the same command again to resume$/m)
    assert.equal(existsSync(join(out, 'model.safetensors')), false)
  } finally {
    await server.close()
  }
})
