#!/usr/bin/env python3
"""Loads llm.ts's Hugging Face exports with plain transformers (no custom code) and checks them against our logits.

Input: export directories (`llmts export --format hf`) and the manifest written by scripts/gpu/hf-logits.mjs (the
text, our GPT-2 token ids of it, and per directory our config and float32 logits for those ids). Per directory:
  static (stdlib only, also with --dry-run): the files transformers reads are there; config.json has the keys and
    values HF's LlamaConfig / GPT2Config need for our config (and no auto_map); model.safetensors holds exactly
    the tensors, shapes and dtype LlamaForCausalLM / GPT2LMHeadModel expect, laid out without gaps; the tokenizer
    files describe GPT-2's 50,257-token BPE; our logits file has the right size.
  transformers (skipped by --dry-run): AutoModelForCausalLM / AutoTokenizer.from_pretrained(dir) without
    trust_remote_code; the class is the expected one; the tokenizer gives our ids (with and without special
    tokens) and decodes them back to the text, <|endoftext|> is its eos/bos and dropped by skip_special_tokens, and
    tokenizer.json read alone by the tokenizers library agrees; the float32 logits equal ours (max |diff| / max |ours| <= --rtol);
    greedy generate() runs and its first token is a top logit of ours.
Prints one JSON line per directory; exits 1 if any check failed, 2 on bad arguments.

Usage: python reference/hf_load_check.py --logits OUT/ours.json [DIR...] [--device cpu|cuda] [--rtol 1e-4] [--dry-run]
(no DIR: every directory of the manifest). scripts/gpu/run.sh's `hf` stage runs it on the GPU machine.
"""
import argparse
import json
import os
import struct
import sys

EOT = 50256
GPT2_VOCAB = 50257
GPT2_MERGES = 50000
TOKENIZER_FILES = ('vocab.json', 'merges.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json')
MODEL_FILES = ('config.json', 'generation_config.json', 'model.safetensors')
DTYPE_BYTES = {'F32': 4, 'BF16': 2, 'F16': 2}
CONFIG_DTYPE = {'float32': 'F32', 'bfloat16': 'BF16', 'float16': 'F16'}


# ---------------------------------------------------------------- what HF's classes need, from our ModelConfig
def expected_config(arch, c):
    """config.json keys -> values that LlamaConfig / GPT2Config must read for our config (HF's documented names)."""
    common = {'architectures': [arch], 'vocab_size': c['vocabSize'], 'tie_word_embeddings': c['tiedEmbeddings'],
              'bos_token_id': EOT, 'eos_token_id': EOT}
    if arch == 'LlamaForCausalLM':
        return {**common, 'model_type': 'llama', 'hidden_size': c['channels'], 'intermediate_size': c['mlpHidden'],
                'num_hidden_layers': c['layers'], 'num_attention_heads': c['heads'], 'num_key_value_heads': c['kvHeads'],
                'max_position_embeddings': c['contextLength'], 'rms_norm_eps': c['normEps'], 'rope_theta': c['ropeTheta'],
                'attention_bias': c['attnBias'], 'mlp_bias': c['mlpBias'], 'hidden_act': 'silu'}
    return {**common, 'model_type': 'gpt2', 'n_embd': c['channels'], 'n_layer': c['layers'], 'n_head': c['heads'],
            'n_positions': c['contextLength'], 'layer_norm_epsilon': c['normEps'], 'activation_function': 'gelu_new'}


def expected_tensors(arch, c):
    """Tensor name -> shape in the checkpoint (torch nn.Linear is (out, in); GPT-2's Conv1D is (in, out))."""
    C, L, V, H = c['channels'], c['layers'], c['vocabSize'], c['mlpHidden']
    t = {}
    if arch == 'LlamaForCausalLM':
        hs = C // c['heads']
        t['model.embed_tokens.weight'] = [V, C]
        for i in range(L):
            p = f'model.layers.{i}.'
            shapes = {'self_attn.q_proj': [C, C], 'self_attn.k_proj': [c['kvHeads'] * hs, C],
                      'self_attn.v_proj': [c['kvHeads'] * hs, C], 'self_attn.o_proj': [C, C],
                      'mlp.gate_proj': [H, C], 'mlp.up_proj': [H, C], 'mlp.down_proj': [C, H]}
            for name, shape in shapes.items():
                t[p + name + '.weight'] = shape
                if c['attnBias' if name.startswith('self_attn') else 'mlpBias']:
                    t[p + name + '.bias'] = [shape[0]]
            t[p + 'input_layernorm.weight'] = [C]
            t[p + 'post_attention_layernorm.weight'] = [C]
        t['model.norm.weight'] = [C]
        if not c['tiedEmbeddings']:
            t['lm_head.weight'] = [V, C]
        return t
    t['transformer.wte.weight'] = [V, C]
    t['transformer.wpe.weight'] = [c['contextLength'], C]
    for i in range(L):
        p = f'transformer.h.{i}.'
        for name, shape in {'attn.c_attn': [C, 3 * C], 'attn.c_proj': [C, C], 'mlp.c_fc': [C, H], 'mlp.c_proj': [H, C]}.items():
            t[p + name + '.weight'] = shape
            t[p + name + '.bias'] = [shape[1]]
        for ln in ('ln_1', 'ln_2'):
            t[p + ln + '.weight'] = [C]
            t[p + ln + '.bias'] = [C]
    t['transformer.ln_f.weight'] = [C]
    t['transformer.ln_f.bias'] = [C]
    if not c['tiedEmbeddings']:
        t['lm_head.weight'] = [V, C]
    return t


# ---------------------------------------------------------------- static checks (stdlib only)
def read_json(path, errors):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        errors.append(f'{os.path.basename(path)}: cannot read ({e})')
        return None


def check_config(d, entry, errors):
    cfg = read_json(os.path.join(d, 'config.json'), errors)
    if cfg is None:
        return None
    for key, want in expected_config(entry['architecture'], entry['config']).items():
        if key not in cfg:
            errors.append(f'config.json: missing {key} (expected {want!r})')
        elif cfg[key] != want:
            errors.append(f'config.json: {key} is {cfg[key]!r}, expected {want!r}')
    if 'auto_map' in cfg:
        errors.append('config.json: has auto_map (custom code); transformers must load it without trust_remote_code')
    gen = read_json(os.path.join(d, 'generation_config.json'), errors)
    if gen is not None and gen.get('eos_token_id') != EOT:
        errors.append(f'generation_config.json: eos_token_id is {gen.get("eos_token_id")!r}, expected {EOT}')
    return cfg


def check_safetensors(d, entry, cfg, errors):
    path = os.path.join(d, 'model.safetensors')
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n))
    size = os.path.getsize(path)
    header.pop('__metadata__', None)
    want = expected_tensors(entry['architecture'], entry['config'])
    missing, extra = sorted(set(want) - set(header)), sorted(set(header) - set(want))
    if missing:
        errors.append(f'model.safetensors: missing {len(missing)} tensors, e.g. {missing[:3]}')
    if extra:
        errors.append(f'model.safetensors: {len(extra)} unexpected tensors, e.g. {extra[:3]}')
    dtypes = sorted({t['dtype'] for t in header.values()})
    want_dtype = CONFIG_DTYPE.get((cfg or {}).get('torch_dtype') or (cfg or {}).get('dtype'))
    if dtypes != [want_dtype]:
        errors.append(f'model.safetensors: dtypes {dtypes}, config.json says {want_dtype}')
    end = 0
    for name, t in sorted(header.items(), key=lambda kv: kv[1]['data_offsets'][0]):
        a, b = t['data_offsets']
        if name in want and t['shape'] != want[name]:
            errors.append(f'model.safetensors: {name} has shape {t["shape"]}, expected {want[name]}')
        count = 1
        for s in t['shape']:
            count *= s
        if a != end or b - a != count * DTYPE_BYTES.get(t['dtype'], 0):
            errors.append(f'model.safetensors: {name} spans bytes [{a}, {b}), expected [{end}, {end + count * DTYPE_BYTES.get(t["dtype"], 0)})')
        end = b
    if 8 + n + end != size:
        errors.append(f'model.safetensors: tensors end at byte {8 + n + end}, the file has {size}')
    return {'tensors': len(header), 'dtype': dtypes[0] if len(dtypes) == 1 else dtypes, 'bytes': size}


def check_tokenizer_files(d, errors):
    vocab = read_json(os.path.join(d, 'vocab.json'), errors)
    if vocab is not None and (len(vocab) != GPT2_VOCAB or sorted(vocab.values()) != list(range(GPT2_VOCAB))):
        errors.append(f'vocab.json: {len(vocab)} entries, expected ids 0..{GPT2_VOCAB - 1}')
    try:
        with open(os.path.join(d, 'merges.txt'), encoding='utf-8') as f:
            lines = [line for line in f.read().split('\n') if line]
        if not lines[0].startswith('#version') or len(lines) - 1 != GPT2_MERGES:
            errors.append(f'merges.txt: {len(lines) - 1} merges after a "{lines[0][:12]}" line, expected "#version" and {GPT2_MERGES}')
    except OSError as e:
        errors.append(f'merges.txt: cannot read ({e})')
    tj = read_json(os.path.join(d, 'tokenizer.json'), errors)
    if tj is not None:
        model = tj.get('model', {})
        if model.get('type') != 'BPE' or len(model.get('vocab', {})) != GPT2_VOCAB or len(model.get('merges', [])) != GPT2_MERGES:
            errors.append('tokenizer.json: expected a BPE model with GPT-2\'s 50257 tokens and 50000 merges')
        if not any(t.get('id') == EOT and t.get('content') == '<|endoftext|>' for t in tj.get('added_tokens', [])):
            errors.append('tokenizer.json: <|endoftext|> (50256) is not an added token')
    tc = read_json(os.path.join(d, 'tokenizer_config.json'), errors)
    if tc is not None and 'auto_map' in tc:
        errors.append('tokenizer_config.json: has auto_map (custom code)')


def check_static(d, entry, manifest, logits_dir, errors):
    for name in MODEL_FILES + TOKENIZER_FILES:
        if not os.path.isfile(os.path.join(d, name)):
            errors.append(f'{name}: missing')
    if errors:
        return {}
    cfg = check_config(d, entry, errors)
    info = check_safetensors(d, entry, cfg, errors)
    check_tokenizer_files(d, errors)
    T, V = entry['shape']
    if T != len(manifest['ids']) or V != entry['config']['vocabSize']:
        errors.append(f'manifest: logits shape {entry["shape"]} does not fit {len(manifest["ids"])} ids and vocabulary {entry["config"]["vocabSize"]}')
    lpath = os.path.join(logits_dir, entry['logits'])
    if not os.path.isfile(lpath) or os.path.getsize(lpath) != T * V * 4:
        errors.append(f'{entry["logits"]}: expected {T * V * 4} bytes of float32 logits')
    return info


# ---------------------------------------------------------------- transformers
def load_kwargs(transformers, torch):
    """Float32 weights whatever the checkpoint's dtype: `dtype` since transformers 4.56, `torch_dtype` before."""
    major, minor = (int(x) for x in transformers.__version__.split('.')[:2])
    return {'dtype': torch.float32} if (major, minor) >= (4, 56) else {'torch_dtype': torch.float32}


def check_transformers(d, entry, manifest, logits_dir, args, errors):
    import numpy as np
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    info = {'transformers': transformers.__version__, 'torch': torch.__version__, 'device': args.device}
    text, ids = manifest['text'], manifest['ids']
    tok = AutoTokenizer.from_pretrained(d)
    info['tokenizer'] = type(tok).__name__
    for what, got in (('tok(text)', tok(text)['input_ids']), ('encode(no special tokens)', tok.encode(text, add_special_tokens=False))):
        if list(got) != ids:
            first = next((i for i, (a, b) in enumerate(zip(got, ids)) if a != b), min(len(got), len(ids)))
            errors.append(f'tokenizer: {what} differs from ours at token {first} ({list(got)[first:first + 3]} vs {ids[first:first + 3]})')
    if tok.decode(ids) != text:
        errors.append(f'tokenizer: decode(our ids) is {tok.decode(ids)!r}, not the text')
    # <|endoftext|> is GPT-2's one special token: eos/bos, one id, and dropped by skip_special_tokens
    if (tok.eos_token_id, tok.bos_token_id, tok.convert_tokens_to_ids('<|endoftext|>')) != (EOT, EOT, EOT):
        errors.append(f'tokenizer: eos/bos/<|endoftext|> ids are {tok.eos_token_id}/{tok.bos_token_id}/'
                      f'{tok.convert_tokens_to_ids("<|endoftext|>")}, expected {EOT}')
    if tok.decode([EOT] + ids + [EOT], skip_special_tokens=True) != text:
        errors.append('tokenizer: decode(skip_special_tokens=True) keeps <|endoftext|> (not marked special)')
    try:  # tokenizer.json alone, as Rust servers read it (the `tokenizers` library, no tokenizer_config.json)
        from tokenizers import Tokenizer
        raw = Tokenizer.from_file(os.path.join(d, 'tokenizer.json'))
        if raw.encode(text).ids != ids:
            errors.append('tokenizer.json: the tokenizers library gives other ids than ours')
        if raw.decode([EOT] + ids, skip_special_tokens=True) != text:
            errors.append('tokenizer.json: <|endoftext|> is not a special added token for the tokenizers library')
    except ImportError:
        info['tokenizers'] = 'not installed'
    model = AutoModelForCausalLM.from_pretrained(d, **load_kwargs(transformers, torch)).to(args.device).eval()
    info['class'] = type(model).__name__
    if info['class'] != entry['architecture']:
        errors.append(f'model class is {info["class"]}, expected {entry["architecture"]}')
    T, V = entry['shape']
    ours = np.fromfile(os.path.join(logits_dir, entry['logits']), dtype='<f4').reshape(T, V).astype(np.float64)
    x = torch.tensor([ids], device=args.device)
    with torch.no_grad():
        theirs = model(x).logits[0].float().cpu().numpy().astype(np.float64)
    if theirs.shape != ours.shape:
        errors.append(f'logits shape {list(theirs.shape)}, ours {[T, V]}')
        return info
    diff = np.abs(theirs - ours)
    worst = np.unravel_index(int(diff.argmax()), diff.shape)
    scale = float(np.abs(ours).max())
    info['logits'] = {'max_abs_diff': float(diff.max()), 'max_abs_ours': scale, 'rel': float(diff.max()) / scale,
                      'worst': [int(worst[0]), int(worst[1])]}
    if float(diff.max()) > args.rtol * scale:
        errors.append(f'logits: position {worst[0]} token {worst[1]} is {theirs[worst]:.6g} in transformers, {ours[worst]:.6g} in ours '
                      f'(max |diff| {diff.max():.3g} > {args.rtol:g} x {scale:.3g})')
    with torch.no_grad():
        gen = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=8, do_sample=False, pad_token_id=EOT)
    new = gen[0, T:].tolist()
    info['generate'] = new
    if not new:
        errors.append('generate: produced no tokens')
    elif ours[T - 1, new[0]] < ours[T - 1].max() - args.rtol * scale:
        errors.append(f'generate: first token {new[0]} has our logit {ours[T - 1, new[0]]:.6g}, our best is {ours[T - 1].max():.6g} ({int(ours[T - 1].argmax())})')
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('dirs', nargs='*', help='export directories (default: every directory of the manifest)')
    ap.add_argument('--logits', required=True, help="manifest written by scripts/gpu/hf-logits.mjs")
    ap.add_argument('--device', default='cpu', help='torch device for the transformers forward (cpu keeps it exact)')
    ap.add_argument('--rtol', type=float, default=1e-4, help='allowed max |diff| relative to max |our logit|')
    ap.add_argument('--dry-run', action='store_true', help='static checks only (no torch, no transformers)')
    args = ap.parse_args()
    with open(args.logits, encoding='utf-8') as f:
        manifest = json.load(f)
    logits_dir = os.path.dirname(os.path.abspath(args.logits))
    by_dir = {os.path.realpath(m['dir']): m for m in manifest['models']}
    dirs = args.dirs or [m['dir'] for m in manifest['models']]
    failed = 0
    for d in dirs:
        entry = by_dir.get(os.path.realpath(d))
        if entry is None:
            print(f'hf_load_check: {d} is not in {args.logits} (run scripts/gpu/hf-logits.mjs on it)', file=sys.stderr)
            return 2
        errors = []
        result = {'dir': d, 'architecture': entry['architecture'], 'dry_run': args.dry_run}
        try:
            result['static'] = check_static(d, entry, manifest, logits_dir, errors)
            if not args.dry_run and not errors:
                result.update(check_transformers(d, entry, manifest, logits_dir, args, errors))
        except Exception as e:  # one line per directory, whatever broke
            errors.append(f'{type(e).__name__}: {e}')
        result['ok'] = not errors
        result['errors'] = errors
        print(json.dumps(result), flush=True)
        failed += bool(errors)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
