#!/usr/bin/env python3
"""Independent HellaSwag reference for llm.ts: writes test/fixtures/hellaswag/expected.json.

Everything the TypeScript side does is redone here from the specifications, not from its code: the harness's
preprocess/capitalize/_encode_pair and few-shot prompt, llm.c's (build-nanogpt's) render_example scoring, a
small GPT-2 byte-level BPE built from encoder.json + vocab.bpe (no tiktoken), the harness's few-shot draw with
Python's own random.Random (lm_eval/api/samplers.py), and the model's forward pass (reference/torch_reference.py,
float64).
The harness scores each ending alone, as lm-evaluation-harness does; llmc scores the 4-row masked batch.

Run (Debian's python3-torch):
  npx tsc -p tsconfig.json && node dist/test/eval/hellaswag-model.js --write-weights /tmp/hellaswag-tiny.safetensors
  /usr/bin/python3 reference/hellaswag_reference.py --weights /tmp/hellaswag-tiny.safetensors
"""
import argparse
import json
import math
import os
import random
import re
import struct
import sys
import unicodedata

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import GPT  # noqa: E402  (the model helper's float64 reference model)

torch.set_default_dtype(torch.float64)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, 'test', 'fixtures', 'hellaswag')
GPT2_DIR = os.path.join(ROOT, '..', 'shared', 'data', 'gpt2')


# ---------------------------------------------------------------- GPT-2 byte-level BPE, from its two files
def bytes_to_unicode():
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def category(c, prefix):
    return unicodedata.category(c).startswith(prefix)


def other(c):
    return not c.isspace() and not category(c, 'L') and not category(c, 'N')


def match_at(text, i):
    """Length of the match of GPT-2's pattern at i:
    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+ (first alternative wins)."""
    n = len(text)
    for s in ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d"):
        if text.startswith(s, i):
            return len(s)
    j = i + 1 if text[i] == ' ' else i
    for cls in (lambda c: category(c, 'L'), lambda c: category(c, 'N'), other):
        if j < n and cls(text[j]):
            e = j
            while e < n and cls(text[e]):
                e += 1
            return e - i
    e = i
    while e < n and text[e].isspace():
        e += 1
    if e == n or e - i == 1:
        return e - i          # \s+ to the end, or the single space before a word (\s+ fallback)
    return e - i - 1          # \s+(?!\S): leave the last space to start the next word


class Gpt2Bpe:
    def __init__(self, directory):
        with open(os.path.join(directory, 'encoder.json'), encoding='utf-8') as f:
            self.encoder = json.load(f)
        with open(os.path.join(directory, 'vocab.bpe'), encoding='utf-8') as f:
            merges = [tuple(line.split()) for line in f.read().split('\n')[1:] if line.strip()]
        self.ranks = {m: r for r, m in enumerate(merges)}
        self.byte_map = bytes_to_unicode()
        self.cache = {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), math.inf), k) for k, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, _ = min(pairs)
            if rank == math.inf:
                break
            first, second = next((parts[k], parts[k + 1]) for r, k in pairs if r == rank)
            merged, k = [], 0
            while k < len(parts):
                if k < len(parts) - 1 and parts[k] == first and parts[k + 1] == second:
                    merged.append(first + second)
                    k += 2
                else:
                    merged.append(parts[k])
                    k += 1
            parts = merged
        self.cache[word] = parts
        return parts

    def encode(self, text):
        ids, i = [], 0
        while i < len(text):
            m = match_at(text, i)
            piece = ''.join(self.byte_map[b] for b in text[i:i + m].encode('utf-8'))
            ids.extend(self.encoder[p] for p in self.bpe(piece))
            i += m
        return ids


# ---------------------------------------------------------------- lm-evaluation-harness hellaswag task
def preprocess(text):
    text = text.strip()
    text = text.replace(' [title]', '. ')
    text = re.sub('\\[.*?\\]', '', text)
    text = text.replace('  ', ' ')
    return text


def process_doc(doc):
    ctx = doc['ctx_a'] + ' ' + doc['ctx_b'].capitalize()
    return {'query': preprocess(doc['activity_label'] + ': ' + ctx),
            'choices': [preprocess(e) for e in doc['endings']], 'gold': int(doc['label'])}


def harness_context(doc, rnd, train, shots):
    """lm_eval ContextSampler.get_context: hellaswag sets neither fewshot_split nor test_split (None == None), so
    it draws shots + 1 documents with the task's one random.Random, drops the query itself, keeps the first K."""
    query = process_doc(doc)['query']
    if shots == 0:
        return query, []
    drawn = rnd.sample(train, shots + 1)
    selected = [x for x in drawn if x != doc][:shots]
    ids = [next(i for i, t in enumerate(train) if t is x) for x in selected]
    labeled = ''.join(process_doc(x)['query'] + ' ' + process_doc(x)['choices'][process_doc(x)['gold']] + '\n\n'
                      for x in selected)
    return labeled + query, ids


def encode_pair(tok, context, continuation):
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole_enc = tok.encode(context + continuation)
    context_enc = tok.encode(context)
    return context_enc, whole_enc[len(context_enc):]


def harness_loglikelihood(model, ctx_enc, cont_enc, window, V):
    inp = (ctx_enc + cont_enc)[-(window + 1):][:-1]
    logits, _, _ = model(torch.tensor([inp]))
    logp = F.log_softmax(logits[0, :, :V], dim=-1)
    contlen = len(cont_enc)
    picked = logp[len(inp) - contlen:len(inp)].gather(1, torch.tensor(cont_enc).unsqueeze(1))
    return picked.sum().item()


def score_harness(model, tok, docs, train, shots, seed, window, V):
    out = []
    rnd = random.Random(seed)  # simple_evaluate's fewshot_random_seed -> task.set_fewshot_seed; docs in order
    for doc in docs:
        context, ids = harness_context(doc, rnd, train, shots)
        choices = process_doc(doc)['choices']
        pairs = [encode_pair(tok, context, ' ' + c) for c in choices]
        lls = [harness_loglikelihood(model, c, k, window, V) for c, k in pairs]
        norm = [ll / len(c) for ll, c in zip(lls, choices)]
        out.append({'context': context, 'shotIndices': ids, 'ctxTokens': pairs[0][0], 'contTokens': [k for _, k in pairs],
                    'scores': lls, 'normScores': norm, 'pred': int(np.argmax(lls)), 'predNorm': int(np.argmax(norm)),
                    'label': int(doc['label'])})
    return out


# ---------------------------------------------------------------- llm.c / build-nanogpt hellaswag.py
def score_llmc(model, tok, docs, window, V):
    out = []
    for doc in docs:
        ctx_tokens = tok.encode(doc['ctx'])
        rows, masks, conts = [], [], []
        for end in doc['endings']:
            end_tokens = tok.encode(' ' + end)
            rows.append(ctx_tokens + end_tokens)
            masks.append([0] * len(ctx_tokens) + [1] * len(end_tokens))
            conts.append(end_tokens)
        max_len = max(len(r) for r in rows)
        assert max_len <= window, 'llmc fixture rows must fit the window untruncated'
        tokens = torch.zeros((4, max_len), dtype=torch.long)
        mask = torch.zeros((4, max_len), dtype=torch.long)
        for i, (r, m) in enumerate(zip(rows, masks)):
            tokens[i, :len(r)] = torch.tensor(r)
            mask[i, :len(m)] = torch.tensor(m)
        logits, _, _ = model(tokens)
        shift_logits = logits[..., :-1, :V].contiguous()
        shift_tokens = tokens[..., 1:].contiguous()
        losses = F.cross_entropy(shift_logits.view(-1, V), shift_tokens.view(-1), reduction='none').view(4, -1)
        shift_mask = mask[..., 1:]
        sum_loss = (losses * shift_mask).sum(dim=1)
        avg_loss = sum_loss / shift_mask.sum(dim=1)
        out.append({'ctxTokens': ctx_tokens, 'contTokens': conts, 'scores': (-sum_loss).tolist(),
                    'normScores': (-avg_loss).tolist(), 'pred': int(sum_loss.argmin()), 'predNorm': int(avg_loss.argmin()),
                    'label': int(doc['label'])})
    return out


# ---------------------------------------------------------------- weights written by the TypeScript side
def read_safetensors(path):
    with open(path, 'rb') as f:
        buf = f.read()
    (n,) = struct.unpack('<Q', buf[:8])
    header = json.loads(buf[8:8 + n])
    meta = header.pop('__metadata__', {})
    tensors = {}
    for name, t in header.items():
        a, b = t['data_offsets']
        assert t['dtype'] == 'F32'
        tensors[name] = np.frombuffer(buf[8 + n + a:8 + n + b], dtype='<f4').reshape(t['shape'])
    return tensors, meta


def load_flat(model, flat, layout):
    """llm.ts's flat layout (src/model/params.ts): fused attn.qkv = [q; k; v] rows, mlp.fc = [gate; up] for SwiGLU."""
    views = {name: torch.from_numpy(flat[off:off + int(np.prod(shape))].astype(np.float64)).view(*shape)
             for name, shape, off in layout}
    with torch.no_grad():
        model.wte.weight.copy_(views['wte'])
        if model.wpe is not None:
            model.wpe.weight.copy_(views['wpe'])
        for l, b in enumerate(model.blocks):
            p, a = f'h.{l}.', b.attn
            for mod, key in ((b.ln1, 'ln1'), (b.ln2, 'ln2')):
                mod.weight.copy_(views[p + key + '.weight'])
                if mod.bias is not None:
                    mod.bias.copy_(views[p + key + '.bias'])
            q, k = a.NH * a.HS, a.KVH * a.HS
            for suffix in ('weight', 'bias'):
                if (p + 'attn.qkv.' + suffix) in views:
                    w = views[p + 'attn.qkv.' + suffix]
                    getattr(a.q, suffix).copy_(w[:q])
                    getattr(a.k, suffix).copy_(w[q:q + k])
                    getattr(a.v, suffix).copy_(w[q + k:])
                    getattr(a.o, suffix).copy_(views[p + 'attn.proj.' + suffix])
                if (p + 'mlp.fc.' + suffix) in views:
                    w = views[p + 'mlp.fc.' + suffix]
                    if b.mlp.swiglu:
                        H = w.shape[0] // 2
                        getattr(b.mlp.gate, suffix).copy_(w[:H])
                        getattr(b.mlp.up, suffix).copy_(w[H:])
                    else:
                        getattr(b.mlp.fc, suffix).copy_(w)
                    getattr(b.mlp.down, suffix).copy_(views[p + 'mlp.proj.' + suffix])
        model.lnf.weight.copy_(views['lnf.weight'])
        if model.lnf.bias is not None:
            model.lnf.bias.copy_(views['lnf.bias'])
        if model.lm_head is not None:
            model.lm_head.weight.copy_(views['lmHead'])


def summarize(name, scoring, shots, seed, window, examples):
    acc = np.array([e['pred'] == e['label'] for e in examples], dtype=np.float64)
    acc_norm = np.array([e['predNorm'] == e['label'] for e in examples], dtype=np.float64)
    n = len(examples)
    stderr = lambda a: float(np.std(a, ddof=1) / math.sqrt(n))  # the harness's mean_stderr
    return {'name': name, 'scoring': scoring, 'shots': shots, 'seed': seed, 'window': window, 'count': n,
            'acc': float(acc.mean()), 'accStderr': stderr(acc), 'accNorm': float(acc_norm.mean()),
            'accNormStderr': stderr(acc_norm), 'examples': examples}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--weights', required=True)
    ap.add_argument('--out', default=os.path.join(FIXTURES, 'expected.json'))
    args = ap.parse_args()
    tensors, meta = read_safetensors(args.weights)
    cfg, layout = json.loads(meta['config']), json.loads(meta['layout'])
    model = GPT(cfg)
    load_flat(model, tensors['params'], layout)
    model.eval()
    tok = Gpt2Bpe(GPT2_DIR)
    read = lambda name: [json.loads(line) for line in open(os.path.join(FIXTURES, name), encoding='utf-8') if line.strip()]
    docs, train = read('val.jsonl'), read('train.jsonl')
    W, V, seed = cfg['contextLength'], cfg['vocabSize'], 1234
    with torch.no_grad():
        cases = [summarize('harness-0shot', 'harness', 0, seed, W, score_harness(model, tok, docs, train, 0, seed, W, V)),
                 summarize('harness-2shot', 'harness', 2, seed, W, score_harness(model, tok, docs, train, 2, seed, W, V)),
                 summarize('llmc-0shot', 'llmc', 0, seed, W, score_llmc(model, tok, docs, W, V))]
    gaps = [min(abs(a - b) for i, a in enumerate(s) for b in s[i + 1:])
            for c in cases for e in c['examples'] for s in (e['scores'], e['normScores'])]
    result = {'generator': 'reference/hellaswag_reference.py', 'torch': torch.__version__, 'weightSeed': int(meta['seed']),
              'config': cfg, 'minScoreGap': min(gaps), 'cases': cases}
    with open(args.out, 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write('\n')
    for c in cases:
        print(f"{c['name']}: acc {c['acc']:.4f} acc_norm {c['accNorm']:.4f} (n={c['count']})")
    print(f'smallest gap between two endings\' scores: {min(gaps):.3e}; wrote {args.out}')


if __name__ == '__main__':
    main()
