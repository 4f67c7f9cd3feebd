#!/usr/bin/env python3
"""Independent PyTorch reference for llm.ts: writes the golden fixtures the TypeScript tests compare against.

Both architectures are built from a config dict with the switches of src/config.ts ModelConfig, written the
ordinary PyTorch way (separate q/k/v/gate/up Linears, rotate-half RoPE, repeat_interleave GQA) and computed in
float64. Only the *export* step knows llm.ts's flat layout (src/model/params.ts) and Hugging Face's names.
Run: `python3 reference/torch_reference.py` with Debian's python3-torch (see reference/README.md).
"""
import json
import math
import os
import struct

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:   # pyenv/venv pythons do not see Debian's dist-packages
    raise SystemExit(f'torch_reference: {e}; install python3-torch (Debian) and run with /usr/bin/python3') from e

torch.set_default_dtype(torch.float64)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, 'test', 'fixtures')


# ---------------------------------------------------------------- safetensors (hand-written, ~20 lines)
def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype 'F32'|'I32'|'BF16', numpy array already of that storage type)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name, dtype, arr in tensors:
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder('<'), copy=False).tobytes()
        header[name] = {'dtype': dtype, 'shape': list(arr.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(',', ':')).encode()
    head += b' ' * ((8 - (8 + len(head)) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def f32(t):
    return ('F32', t.detach().to(torch.float32).contiguous().numpy())


def bf16_bits(t):
    """float -> bfloat16 bit patterns (round to nearest even), as uint16."""
    u = t.detach().to(torch.float32).contiguous().numpy().view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def round_bf16(t):
    bits = torch.from_numpy(bf16_bits(t).astype(np.int32) << 16)
    return bits.view(torch.float32).to(t.dtype)


# ---------------------------------------------------------------- the model, the natural PyTorch way
class Norm(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg['channels']
        self.layernorm = cfg['norm'] == 'layernorm'
        self.eps = cfg['normEps']
        self.weight = nn.Parameter(torch.ones(C))
        self.bias = nn.Parameter(torch.zeros(C)) if self.layernorm else None

    def forward(self, x):
        if self.layernorm:
            return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight  # HF LlamaRMSNorm


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(T, HS, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, HS, 2, dtype=torch.float64) / HS))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)   # angle = position · theta^(-2i/HS)
    emb = torch.cat((freqs, freqs), dim=-1)                               # (T, HS)
    return emb.cos(), emb.sin()


def causal_attention(q, k, v):
    if hasattr(F, 'scaled_dot_product_attention'):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]   # torch < 2.0 (Debian 12 ships 1.13): the same math, spelled out
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    att = att.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float('-inf'))
    return att.softmax(dim=-1) @ v


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, NH, KVH = cfg['channels'], cfg['heads'], cfg['kvHeads']
        self.NH, self.KVH, self.HS = NH, KVH, C // NH
        self.rope, self.theta = cfg['positions'] == 'rope', cfg['ropeTheta']
        bias = cfg['attnBias']
        self.q = nn.Linear(C, NH * self.HS, bias=bias)
        self.k = nn.Linear(C, KVH * self.HS, bias=bias)
        self.v = nn.Linear(C, KVH * self.HS, bias=bias)
        self.o = nn.Linear(NH * self.HS, C, bias=bias)

    def forward(self, x):
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.NH, self.HS).transpose(1, 2)    # (B, NH, T, HS)
        k = self.k(x).view(B, T, self.KVH, self.HS).transpose(1, 2)   # (B, KVH, T, HS)
        v = self.v(x).view(B, T, self.KVH, self.HS).transpose(1, 2)
        if self.rope:
            cos, sin = rope_cos_sin(T, self.HS, self.theta)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
        rep = self.NH // self.KVH                                       # query head h reads K/V head h // rep
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, self.NH * self.HS)
        return self.o(y)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, H, bias = cfg['channels'], cfg['mlpHidden'], cfg['mlpBias']
        self.swiglu = cfg['mlp'] == 'swiglu'
        if self.swiglu:
            self.gate, self.up = nn.Linear(C, H, bias=bias), nn.Linear(C, H, bias=bias)
        else:
            self.fc = nn.Linear(C, H, bias=bias)
        self.down = nn.Linear(H, C, bias=bias)

    def forward(self, x):
        if self.swiglu:
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.down(F.gelu(self.fc(x), approximate='tanh'))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln1, self.attn, self.ln2, self.mlp = Norm(cfg), Attention(cfg), Norm(cfg), MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """wte/lm_head have Vp rows like llm.ts (padded rows zero); softmax and loss see logits[..., :V] only."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        Vp, C = cfg['paddedVocabSize'], cfg['channels']
        self.wte = nn.Embedding(Vp, C)
        self.wpe = nn.Embedding(cfg['contextLength'], C) if cfg['positions'] == 'learned' else None
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg['layers'])])
        self.lnf = Norm(cfg)
        self.lm_head = None if cfg['tiedEmbeddings'] else nn.Linear(C, Vp, bias=False)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T))
        for block in self.blocks:
            x = block(x)
        x = self.lnf(x)
        logits = x @ self.wte.weight.T if self.lm_head is None else self.lm_head(x)
        logits = logits[..., :self.cfg['vocabSize']]
        if targets is None:
            return logits, None, None
        V = logits.shape[-1]
        losses = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1, reduction='none')
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1)
        return logits, loss, losses.view(targets.shape)


def init_golden(model, cfg, seed):
    """Random everything (norm weights and biases too, so the forward pass depends on them), float32-exact,
    padded vocabulary rows zero."""
    g = torch.Generator().manual_seed(seed)
    V = cfg['vocabSize']
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith('bias'):
                val = 0.02 * r
            elif p.dim() == 1:
                val = 1 + 0.1 * r
            elif name.endswith(('attn.o.weight', 'mlp.down.weight')):
                val = 0.02 / math.sqrt(2 * cfg['layers']) * r
            else:
                val = 0.02 * r
            p.copy_(val.to(torch.float64))
        model.wte.weight[V:] = 0
        if model.lm_head is not None:
            model.lm_head.weight[V:] = 0


# ---------------------------------------------------------------- export: llm.ts flat layout (src/model/params.ts)
def our_layout(model, get):
    """[(name, tensor)] in the order of ParamLayout; `get(param)` picks the value or the gradient.
    Fused: attn.qkv = [q; k; v] rows, SwiGLU mlp.fc = [gate; up] rows."""
    cfg, out = model.cfg, [('wte', get(model.wte.weight))]
    if model.wpe is not None:
        out.append(('wpe', get(model.wpe.weight)))

    def norm(prefix, n):
        out.append((prefix + '.weight', get(n.weight)))
        if n.bias is not None:
            out.append((prefix + '.bias', get(n.bias)))

    for l, b in enumerate(model.blocks):
        p, a, m = f'h.{l}.', b.attn, b.mlp
        norm(p + 'ln1', b.ln1)
        out.append((p + 'attn.qkv.weight', torch.cat([get(a.q.weight), get(a.k.weight), get(a.v.weight)])))
        if cfg['attnBias']:
            out.append((p + 'attn.qkv.bias', torch.cat([get(a.q.bias), get(a.k.bias), get(a.v.bias)])))
        out.append((p + 'attn.proj.weight', get(a.o.weight)))
        if cfg['attnBias']:
            out.append((p + 'attn.proj.bias', get(a.o.bias)))
        norm(p + 'ln2', b.ln2)
        fc = [m.gate, m.up] if m.swiglu else [m.fc]
        out.append((p + 'mlp.fc.weight', torch.cat([get(x.weight) for x in fc])))
        if cfg['mlpBias']:
            out.append((p + 'mlp.fc.bias', torch.cat([get(x.bias) for x in fc])))
        out.append((p + 'mlp.proj.weight', get(m.down.weight)))
        if cfg['mlpBias']:
            out.append((p + 'mlp.proj.bias', get(m.down.bias)))
    norm('lnf', model.lnf)
    if model.lm_head is not None:
        out.append(('lmHead', get(model.lm_head.weight)))
    return out


def flatten(named):
    return torch.cat([t.reshape(-1) for _, t in named])


def layout_json(named):
    rows, offset = [], 0
    for name, t in named:
        rows.append([name, list(t.shape), offset])
        offset += t.numel()
    return json.dumps(rows)


# ---------------------------------------------------------------- golden fixtures
def schedule(s, lr, min_lr, warmup, steps):
    """llm.c's schedule: linear warmup, then cosine from lr down to min_lr."""
    if s < warmup:
        return lr * (s + 1) / warmup
    return min_lr + 0.5 * (1 + math.cos(math.pi * (s - warmup) / (steps - warmup))) * (lr - min_lr)


def make_batch(rng, perm, shape, T, ignore_frac):
    """A noisy bigram chain (next = perm[prev] 75% of the time), so training visibly lowers the loss.
    Returns inputs and targets of shape (*shape, T); a fraction of targets is -1 (ignored)."""
    V = len(perm)
    seq = np.zeros(shape + (T + 1,), dtype=np.int64)
    seq[..., 0] = rng.randint(0, V, size=shape)
    for t in range(T):
        follow = rng.rand(*shape) < 0.75
        seq[..., t + 1] = np.where(follow, perm[seq[..., t]], rng.randint(0, V, size=shape))
    targets = seq[..., 1:].copy()
    targets[rng.rand(*targets.shape) < ignore_frac] = -1
    return torch.from_numpy(seq[..., :-1].copy()), torch.from_numpy(targets)


def train_trajectory(model, xs, ys, tc):
    """tc: lr, minLr, warmup, steps, accum, gradClip, beta1, beta2, eps, weightDecay. Decay on >= 2-D tensors."""
    params = list(model.parameters())
    groups = [{'params': [p for p in params if p.dim() >= 2], 'weight_decay': tc['weightDecay']},
              {'params': [p for p in params if p.dim() < 2], 'weight_decay': 0.0}]
    opt = torch.optim.AdamW(groups, lr=tc['lr'], betas=(tc['beta1'], tc['beta2']), eps=tc['eps'])
    losses, norms, lrs = [], [], []
    for s in range(tc['steps']):
        lr = schedule(s, tc['lr'], tc['minLr'], tc['warmup'], tc['steps'])
        for g in opt.param_groups:
            g['lr'] = lr
        opt.zero_grad()
        total = 0.0
        for k in range(tc['accum']):
            _, loss, _ = model(xs[s, k], ys[s, k])
            (loss / tc['accum']).backward()
            total += loss.item() / tc['accum']
        norm = torch.nn.utils.clip_grad_norm_(params, tc['gradClip'])   # returns the norm before clipping
        opt.step()
        losses.append(total)
        norms.append(norm.item())
        lrs.append(lr)
    return losses, norms, lrs


def write_golden(name, cfg, seed, B=2, T=16, lr=1e-2, store_final=False):
    torch.manual_seed(seed)
    model = GPT(cfg)
    init_golden(model, cfg, seed)
    rng = np.random.RandomState(seed)
    perm = rng.permutation(cfg['vocabSize'])
    x, y = make_batch(rng, perm, (B,), T, 0.15)
    named0 = our_layout(model, lambda p: p.detach().clone())
    logits, loss, losses = model(x, y)
    loss.backward()
    grads = flatten(our_layout(model, lambda p: p.grad))

    tc = {'lr': lr, 'minLr': 0.1 * lr, 'warmup': 3, 'steps': 10, 'accum': 2, 'gradClip': 1.0,
          'beta1': 0.9, 'beta2': 0.95, 'eps': 1e-8, 'weightDecay': 0.1}
    xs, ys = make_batch(rng, perm, (tc['steps'], tc['accum'], B), T, 0.05)
    tl, tn, tlr = train_trajectory(model, xs, ys, tc)
    tc.update({'losses': tl, 'gradNorms': tn, 'lrs': tlr})
    tensors = [('params', *f32(flatten(named0))), ('grads', *f32(grads)),
               ('tokens', 'I32', x.numpy().astype(np.int32)), ('targets', 'I32', y.numpy().astype(np.int32)),
               ('logits', *f32(logits)), ('losses', *f32(losses)),
               ('train_tokens', 'I32', xs.numpy().astype(np.int32)),
               ('train_targets', 'I32', ys.numpy().astype(np.int32))]
    final = our_layout(model, lambda p: p.detach())
    tc['finalStats'] = {n: [t.sum().item(), t.pow(2).sum().item()] for n, t in final}   # per tensor: sum, sum of squares
    if store_final:   # the whole vector for one config only (fixture size)
        tensors.append(('params_final', *f32(flatten(final))))
    meta = {'config': json.dumps(cfg), 'layout': layout_json(named0), 'loss': repr(loss.item()),
            'train': json.dumps(tc), 'generator': 'reference/torch_reference.py', 'torch': torch.__version__}
    write_safetensors(os.path.join(FIXTURES, 'golden', name + '.safetensors'), tensors, meta)
    clipped = sum(n > tc['gradClip'] for n in tn)
    print(f'golden/{name}: loss {loss.item():.6f}, train losses {tl[0]:.4f} -> {tl[-1]:.4f}, '
          f'grad norms {min(tn):.3f}..{max(tn):.3f} (clipped in {clipped}/{tc["steps"]} steps)')


def tiny(**over):
    base = {'vocabSize': 96, 'paddedVocabSize': 128, 'contextLength': 32, 'layers': 2, 'channels': 32,
            'heads': 4, 'kvHeads': 4, 'norm': 'layernorm', 'normEps': 1e-5, 'positions': 'learned',
            'ropeTheta': 10000.0, 'mlp': 'gelu', 'mlpHidden': 128, 'attnBias': True, 'mlpBias': True,
            'tiedEmbeddings': True}
    base.update(over)
    return base


VARIANT = dict(norm='rmsnorm', positions='rope', mlp='swiglu', attnBias=False, mlpBias=False)
GOLDEN = {
    # (a) GPT-2: layernorm, learned positions, GELU, biases, tied, ordinary attention
    'gpt2': tiny(),
    # (b) the variant: rmsnorm, rope, GQA (2 K/V heads), SwiGLU, no biases, tied
    'variant': tiny(**VARIANT, kvHeads=2, mlpHidden=64),
    # (c) variant, untied, attention and MLP biases, multi-query (1 K/V head)
    'variant-mqa-bias-untied': tiny(**{**VARIANT, 'attnBias': True, 'mlpBias': True}, kvHeads=1, mlpHidden=64,
                                    tiedEmbeddings=False, normEps=1e-6),
    # (d) mixed: layernorm + rope (theta 500) + SwiGLU, untied, GQA, attention bias only
    'mixed-ln-rope-swiglu': tiny(positions='rope', ropeTheta=500.0, mlp='swiglu', mlpHidden=48, kvHeads=2,
                                 attnBias=True, mlpBias=False, tiedEmbeddings=False),
    # (e) mixed: rmsnorm + learned positions + GELU, GQA, MLP bias only, one layer, unpadded vocabulary
    'mixed-rms-learned-gelu': tiny(norm='rmsnorm', kvHeads=2, layers=1, attnBias=False, mlpBias=True,
                                   vocabSize=128, paddedVocabSize=128, mlpHidden=96),
}


def main():
    from hf_fixtures import write_hf_gpt2, write_hf_llama
    write_hf_llama('hf-llama', tiny(**VARIANT, kvHeads=2, mlpHidden=64, tiedEmbeddings=False), seed=11, dtype='F32')
    write_hf_llama('hf-llama-bf16', tiny(**{**VARIANT, 'attnBias': True}, kvHeads=2, mlpHidden=64, ropeTheta=500000.0,
                                         normEps=1e-6), seed=12, dtype='BF16')
    write_hf_gpt2('hf-gpt2', tiny(), seed=13)
    for i, (name, cfg) in enumerate(GOLDEN.items()):
        write_golden(name, cfg, seed=100 + i, store_final=name == 'variant-mqa-bias-untied')


if __name__ == '__main__':
    main()
