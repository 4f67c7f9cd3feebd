"""PyTorch CPU reference for bench/cpu.ts: the same GPT (tiny-gpt2 or tiny-variant) in float32, timed over
training steps (forward + backward + AdamW) at the same B, T and thread count. Prints one JSON line.

Attention is written out (Debian's torch 1.13 has no scaled_dot_product_attention); logits cover the padded
vocabulary like llm.ts (padded columns masked to -inf before the loss), embeddings tied.
Run: /usr/bin/python3 bench/torch_cpu_reference.py --model tiny-variant --batch 8 --seq 256 --threads 2 --steps 3
"""
import argparse
import json
import math
import os
import sys
import time


def _threads_from_argv():
    """--threads must reach the BLAS/OpenMP pools before torch loads them: torch.set_num_threads alone leaves
    the system OpenBLAS that Debian's torch calls at its default of one thread per core."""
    for i, a in enumerate(sys.argv):
        if a == '--threads' and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith('--threads='):
            return a.split('=', 1)[1]
    return None


if _threads_from_argv() is not None:
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[var] = _threads_from_argv()

import torch  # noqa: E402  (after the thread variables)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

PRESETS = {
    # layers, channels, heads, kv heads, norm, positions, mlp, mlp hidden, biases
    'tiny-gpt2': dict(L=4, C=256, NH=8, KVH=8, norm='layernorm', pos='learned', mlp='gelu', H=1024, bias=True),
    'tiny-variant': dict(L=4, C=256, NH=8, KVH=4, norm='rmsnorm', pos='rope', mlp='swiglu', H=768, bias=False),
    'gpt2-124m': dict(L=12, C=768, NH=12, KVH=12, norm='layernorm', pos='learned', mlp='gelu', H=3072, bias=True),
    'variant-124m': dict(L=12, C=768, NH=12, KVH=6, norm='rmsnorm', pos='rope', mlp='swiglu', H=2048, bias=False),
}
V, VP, MAXT = 50257, 50304, 1024


class RMSNorm(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


def norm(cfg):
    return nn.LayerNorm(cfg['C'], eps=1e-5) if cfg['norm'] == 'layernorm' else RMSNorm(cfg['C'])


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, NH, KVH, H, bias = cfg['C'], cfg['NH'], cfg['KVH'], cfg['H'], cfg['bias']
        self.cfg, self.HS = cfg, C // NH
        self.ln1, self.ln2 = norm(cfg), norm(cfg)
        self.qkv = nn.Linear(C, (NH + 2 * KVH) * self.HS, bias=bias)
        self.proj = nn.Linear(C, C, bias=bias)
        fc = 2 * H if cfg['mlp'] == 'swiglu' else H
        self.fc = nn.Linear(C, fc, bias=bias)
        self.mlp_proj = nn.Linear(H, C, bias=bias)

    def attention(self, x, cos, sin):
        B, T, _ = x.shape
        NH, KVH, HS = self.cfg['NH'], self.cfg['KVH'], self.HS
        q, k, v = self.qkv(x).split([NH * HS, KVH * HS, KVH * HS], dim=-1)
        q = q.view(B, T, NH, HS).transpose(1, 2)
        k = k.view(B, T, KVH, HS).transpose(1, 2)
        v = v.view(B, T, KVH, HS).transpose(1, 2)
        if cos is not None:
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if KVH != NH:
            k, v = k.repeat_interleave(NH // KVH, dim=1), v.repeat_interleave(NH // KVH, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(HS))
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float('-inf')).softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, NH * HS))

    def forward(self, x, cos, sin):
        x = x + self.attention(self.ln1(x), cos, sin)
        h = self.fc(self.ln2(x))
        if self.cfg['mlp'] == 'swiglu':
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.gelu(h, approximate='tanh')
        return x + self.mlp_proj(h)


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(VP, cfg['C'])
        self.wpe = nn.Embedding(MAXT, cfg['C']) if cfg['pos'] == 'learned' else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg['L']))
        self.lnf = norm(cfg)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx)
        cos = sin = None
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T))
        else:
            HS = self.cfg['C'] // self.cfg['NH']
            inv = 10000.0 ** (-torch.arange(0, HS, 2, dtype=torch.float32) / HS)
            ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)
            ang = torch.cat((ang, ang), dim=-1)
            cos, sin = ang.cos(), ang.sin()
        for blk in self.blocks:
            x = blk(x, cos, sin)
        logits = self.lnf(x) @ self.wte.weight.t()               # (B, T, Vp), tied embeddings
        logits[..., V:] = float('-inf')                          # padded columns never get probability
        return F.cross_entropy(logits.view(-1, VP), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default='tiny-variant', choices=sorted(PRESETS))
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--seq', type=int, default=256)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--warmup', type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT(PRESETS[a.model])
    for p in model.parameters():                                  # GPT-2-like init keeps the loss near ln V
        if p.dim() >= 2:
            nn.init.normal_(p, std=0.02)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, V, (a.batch, a.seq), generator=g)
    y = torch.randint(0, V, (a.batch, a.seq), generator=g)
    times, cpu = [], []
    for step in range(a.warmup + a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        opt.step()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)   # all threads' CPU seconds (OpenMP spinning included)
    best = min(times)
    print(json.dumps({'model': a.model, 'B': a.batch, 'T': a.seq, 'threads': torch.get_num_threads(),
                      'torch': torch.__version__, 'step_s': times, 'best_s': best,
                      'tokens_per_s': a.batch * a.seq / best, 'cpu_s': cpu,
                      'tokens_per_cpu_s': a.batch * a.seq / min(cpu), 'loss': loss.item()}))


if __name__ == '__main__':
    main()
