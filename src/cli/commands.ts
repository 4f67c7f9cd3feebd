// Every subcommand of the llmts binary, each loaded on first use (main.ts dispatches through this table; the README
// test walks it to find every command and flag).

import type { Command } from './command.js'

/** One line per command for `llmts --help` and the first line of the command's own --help (listed here, so that
 *  the main help loads no command module). */
export const summaries = {
  prepare: 'tokenize text, JSONL, Parquet or a built-in corpus into llm.c token shards',
  tokenize: 'print the GPT-2 token ids of a file (or decode ids back to text)',
  model: 'list the model presets, or describe one model, with parameter counts',
  train: 'train a model (AdamW, warmup + cosine/linear/constant/WSD, checkpoints, exact resume; --default-run is npm start)',
  sample: 'generate text from a trained model (temperature, top-k, top-p; key/value cache)',
  eval: 'evaluate a model: validation loss (eval loss) or HellaSwag accuracy (eval hellaswag)',
  evalLoss: 'mean cross-entropy over the first N batches of token shards',
  evalHellaswag: 'HellaSwag accuracy (lm-evaluation-harness or llm.c scoring)',
  export: 'export a model as a Hugging Face directory (LlamaForCausalLM or GPT2LMHeadModel + GPT-2 tokenizer)',
  download: 'download a Hugging Face model (Llama or GPT-2 layout, safetensors) for --model / --init-from',
  plot: 'plot the loss, HellaSwag, learning-rate, gradient-norm or tokens/s curves of several runs on one chart (SVG or PNG)',
  compare: 'several runs side by side: steps, tokens, final and best losses, HellaSwag, spikes, tokens/s (table, JSON or CSV)',
} as const

export const commands: Record<string, () => Promise<{ command: Command }>> = {
  prepare: () => import('./prepare.js'),
  tokenize: () => import('./tokenize.js'),
  model: () => import('./model.js'),
  train: () => import('./train.js'),
  sample: () => import('./sample.js'),
  eval: () => import('./eval.js'),
  export: () => import('./export.js'),
  download: () => import('./download.js'),
  plot: () => import('./plot.js'),
  compare: () => import('./compare.js'),
}
