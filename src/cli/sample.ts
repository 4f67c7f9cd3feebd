// `llmts sample`: generates text from a run directory, checkpoint, Hugging Face directory (or a preset with
// random weights), streaming it to stdout as it is decoded. Uses the key/value cache, so every new token
// costs one position's forward pass. The prompt is preceded by <|endoftext|>, as documents were in training, and
// generation stops at the next one (the document's end) unless --ignore-eot.

import { checkModelFits, decodingModel, moveWeightsInto, requireGpt2Tokenizer, resolveModel } from '../model/load.js'
import { decode, encode, EOT } from '../tokenizer.js'
import { createBackend, describeBackend } from '../train/device.js'
import { generate, sampleDefaults } from '../train/sample.js'
import { InputError } from '../util/errors.js'
import { plural } from '../util/progress.js'
import { MAX_SEED, Rng } from '../util/rng.js'
import { backendFlags, formatHelp, jsonFlag, MODEL_FORMS, modelFlag, parseArgs, refuseArguments } from './args.js'
import type { Command } from './command.js'
import { summaries } from './commands.js'
import { printJson, stderrNotes } from './output.js'

const note = stderrNotes(['sample'])

const flags = {
  model: modelFlag,
  prompt: { type: 'string', help: 'text to continue (default or "": start a new document)', metavar: 'TEXT', allowEmpty: true },
  'max-tokens': { type: 'int', help: 'tokens to generate', default: sampleDefaults.maxTokens, min: 1 },
  temperature: { type: 'number', help: 'softmax temperature; 0 = greedy', default: sampleDefaults.temperature, min: 0 },
  'top-k': { type: 'int', help: 'sample from the k most likely tokens; 0 = all', default: sampleDefaults.topK, min: 0 },
  'top-p': { type: 'number', help: 'nucleus: the smallest set of tokens with this much probability', default: sampleDefaults.topP, min: 0, max: 1 },
  'ignore-eot': { type: 'bool', help: 'go on past <|endoftext|> (printed as such) up to --max-tokens, as llm.c and nanoGPT do; ' +
    'by default generation stops there, as Hugging Face generate() stops at eos_token_id' },
  seed: { type: 'int', help: 'sampling seed; also the weight initialization seed for a preset or config without weights', default: 1337, min: 0, max: MAX_SEED },
  ...backendFlags,
  json: jsonFlag,
} as const

export const command: Command = {
  name: 'sample',
  summary: summaries.sample,
  usage: `--model ${MODEL_FORMS} [--prompt TEXT] [--max-tokens N] [flags]`,
  flags,
  async run(argv) {
    const p = parseArgs('llmts sample', flags, argv)
    if (p.help) { process.stdout.write(formatHelp('llmts sample', this.usage, this.summary, flags)); return 0 }
    refuseArguments('llmts sample', p.positionals, { hint: 'give the prompt with --prompt' })
    if (p.flags.model === undefined) throw new InputError('llmts sample: --model is required (a run directory, checkpoint, HF directory, preset or config JSON)')
    if (p.flags['top-p'] === 0) throw new InputError('llmts sample: --top-p must be above 0')
    const resolved = resolveModel(p.flags.model, { check: m => requireGpt2Tokenizer('llmts sample', m, 'text prompts') })
    const config = resolved.config
    checkModelFits('llmts sample', resolved.config, 4, 'its weights')
    const prompt0 = p.flags.prompt ?? ''
    const prompt = promptTokens(prompt0, config.contextLength)
    const maxTokens = Math.min(p.flags['max-tokens'], config.contextLength - prompt.length)
    if (maxTokens < p.flags['max-tokens']) note(`generating ${maxTokens} ${plural(maxTokens, 'token')} (the context length is ${config.contextLength})`)
    const backend = await createBackend(p.flags.device, { threads: p.flags.threads, precision: p.flags.precision })
    note(describeBackend(backend))
    const model = decodingModel(backend, config)
    if (!moveWeightsInto(model, resolved)) {
      note(`${resolved.source} has no weights; using random weights from --seed ${p.flags.seed}`)
      model.initWeights(p.flags.seed)
    }
    const opts = {
      maxTokens, temperature: p.flags.temperature, topK: p.flags['top-k'], topP: p.flags['top-p'],
      ...(p.flags['ignore-eot'] ? {} : { stopAt: EOT }),
    }
    const json = p.flags.json
    if (!json) process.stdout.write(prompt0)
    const stream = new TextStream(s => process.stdout.write(s))
    const t0 = performance.now()
    let out: Int32Array
    try {
      out = generate(model, prompt, opts, new Rng(p.flags.seed), token => {
        // `| head -1`: a reader gone (or a full disk) is seen here; main's stdout handler then ends the process
        if (process.stdout.errored !== null) throw stdoutGone
        if (!json) stream.push(token)
      })
    } catch (e) {
      if (e === stdoutGone) return 0
      throw e
    }
    const seconds = (performance.now() - t0) / 1000
    // what ended it: the <|endoftext|> drawn, --max-tokens, or the context (--max-tokens was cut to fit it)
    const stop = out.length < maxTokens ? 'eot' : maxTokens < p.flags['max-tokens'] ? 'context' : 'max-tokens'
    const rate = (out.length + (stop === 'eot' ? 1 : 0)) / seconds   // generated tokens / s counts the <|endoftext|> drawn
    if (json) {
      printJson({ model: resolved.path, prompt: prompt0, text: decode(out), tokens: out.length, ids: [...out], stop,
        tokensPerSecond: rate })
    } else {
      stream.end()
      note(`${out.length} ${plural(out.length, 'token')}${stop === 'eot' ? ', stopped at <|endoftext|>' : ''} in ` +
        `${seconds.toFixed(1)} s (${rate.toFixed(1)} tokens/s), ${resolved.source}`)
    }
    return 0
  },
}

/** <|endoftext|> then the prompt's tokens, leaving room in the context for at least one generated token. */
function promptTokens(text: string, contextLength: number): Int32Array {
  const prompt = Int32Array.from([EOT, ...encode(text)])
  if (prompt.length >= contextLength) {   // the count the user can act on is the text's, not with our EOT
    throw new InputError(`llmts sample: the prompt is ${prompt.length - 1} tokens (${prompt.length} with the <|endoftext|> ` +
      `put before it), which leaves no room to generate in the model's ${contextLength}-token context ` +
      `(expected at most ${contextLength - 2} tokens of prompt)`)
  }
  return prompt
}

/** Thrown out of generate() once stdout has failed: the tokens still to come would go nowhere. */
const stdoutGone = new Error('stdout closed')

/** Writes decoded text as tokens arrive, holding back a trailing incomplete UTF-8 character until its last byte. */
export class TextStream {
  private readonly ids: number[] = []
  private printed = 0     // characters of decode(ids) written so far

  constructor(private readonly write: (text: string) => void) {}

  push(token: number): void {
    this.ids.push(token)
    const text = decode(this.ids)
    if (text.endsWith('\uFFFD')) return   // wait for the rest of a multi-byte character
    this.write(text.slice(this.printed))
    this.printed = text.length
  }

  /** Writes what is held back (an unfinished character shows as U+FFFD) and a newline. */
  end(): void {
    this.write(decode(this.ids).slice(this.printed) + '\n')
  }
}
