// `llmts prepare fineweb` stopped by Ctrl-C while it downloads: one line saying how to go on, and exit code 130 (as
// a process ended by SIGINT; exit 2 read as bad input, and as train's Ctrl-C does), no shard under its final name.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { finewebSpec } from '../../src/data/fineweb/fineweb.js'
import { start } from '../faults/helpers.js'
import { parquetOf, startFaultServer } from '../helpers/http-fault-server.js'

const root = mkdtempSync(join(tmpdir(), 'llmts-fineweb-int-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))

test('prepare fineweb: Ctrl-C during the download ends with exit 130 and one line; no shard written', async () => {
  const spec = finewebSpec()
  const data = parquetOf(Array.from({ length: 400 }, (_, i) => `document ${i} `.repeat(20)), 64)
  const server = await startFaultServer({ repo: spec.repo, dir: spec.dir, lifetimeMs: 120_000,
    files: [{ path: `${spec.dir}/000_00000.parquet`, data, faults: { bytesPerSecond: 2000 } }] })   // a minute: time to stop it
  try {
    const out = join(root, 'out')
    let sent = false
    const r = await start(['prepare', 'fineweb', '--out', out, '--cache', join(root, 'cache'), '--base-url', server.baseUrl], {
      onStderr: (text, child) => { if (!sent && text.includes('listed from the hub')) { sent = true; child.kill('SIGINT') } },
    }).done
    assert.equal(r.code, 130, r.stderr)
    assert.match(r.stderr, /^llmts prepare fineweb: interrupted; run the same command again to resume$/m)
    // the folder the command made is removed again when it is left empty (as its lock's release does)
    assert.deepEqual(existsSync(out) ? readdirSync(out).filter(f => f.endsWith('.bin')) : [], [])
  } finally {
    await server.close()
  }
})
