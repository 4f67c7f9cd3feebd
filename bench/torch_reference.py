#!/usr/bin/env python3
"""PyTorch reference for bench/cuda.ts: the same GPT-2 / variant model trained the fast PyTorch way on one GPU —
bf16 autocast, TF32 matmuls, torch.compile, scaled_dot_product_attention (causal, grouped-query), fused AdamW —
with llm.ts's shapes and hyper-parameters (fused qkv and fc Linears, logits over the padded vocabulary with the
loss over the real one, AdamW lr 6e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on matrices and embeddings,
gradient clipping at 1.0, loss.item() every step as a training loop logs it). Prints one JSON line.

Run: python3 bench/torch_reference.py --model variant-124m --batch 16 --seq 1024 --steps 10
--profile N: N more steps after the timed ones under torch.profiler; the JSON line then also holds GPU time per step
by category (bench/profile-categories.json, which bench/cuda-profile.ts lines llm.ts's ops up with) and the top kernels.
"""
import argparse
import json
import os
import math
import re
import time
from collections import defaultdict

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    # layers, channels, heads, kv heads, norm, positions, mlp, mlp hidden, biases
    'gpt2-124m': dict(L=12, C=768, NH=12, KVH=12, norm='layernorm', pos='learned', mlp='gelu', H=3072, bias=True),
    'gpt2-350m': dict(L=24, C=1024, NH=16, KVH=16, norm='layernorm', pos='learned', mlp='gelu', H=4096, bias=True),
    'variant-124m': dict(L=12, C=768, NH=12, KVH=6, norm='rmsnorm', pos='rope', mlp='swiglu', H=2048, bias=False),
    'variant-350m': dict(L=24, C=1024, NH=16, KVH=8, norm='rmsnorm', pos='rope', mlp='swiglu', H=2816, bias=False),
    'tiny-gpt2': dict(L=4, C=256, NH=8, KVH=8, norm='layernorm', pos='learned', mlp='gelu', H=1024, bias=True),
    'tiny-variant': dict(L=4, C=256, NH=8, KVH=4, norm='rmsnorm', pos='rope', mlp='swiglu', H=768, bias=False),
}
V, VP, MAXT = 50257, 50304, 1024


def norm(cfg):
    return nn.LayerNorm(cfg['C'], eps=1e-5) if cfg['norm'] == 'layernorm' else nn.RMSNorm(cfg['C'], eps=1e-5)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, NH, KVH, H, b = cfg['C'], cfg['NH'], cfg['KVH'], cfg['H'], cfg['bias']
        self.NH, self.KVH, self.HS, self.rope, self.swiglu = NH, KVH, C // NH, cfg['pos'] == 'rope', cfg['mlp'] == 'swiglu'
        self.ln1, self.ln2 = norm(cfg), norm(cfg)
        self.qkv = nn.Linear(C, (NH + 2 * KVH) * self.HS, bias=b)
        self.proj = nn.Linear(NH * self.HS, C, bias=b)
        self.fc = nn.Linear(C, 2 * H if self.swiglu else H, bias=b)
        self.mlp_proj = nn.Linear(H, C, bias=b)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split([self.NH * self.HS, self.KVH * self.HS, self.KVH * self.HS], dim=-1)
        q = q.view(B, T, self.NH, self.HS).transpose(1, 2)
        k = k.view(B, T, self.KVH, self.HS).transpose(1, 2)
        v = v.view(B, T, self.KVH, self.HS).transpose(1, 2)
        if self.rope:
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.KVH != self.NH)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, self.NH * self.HS))
        h = self.fc(self.ln2(x))
        if self.swiglu:
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.gelu(h, approximate='tanh')
        return x + self.mlp_proj(h)


class GPT(nn.Module):
    def __init__(self, cfg, T):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(VP, cfg['C'])
        self.wpe = nn.Embedding(MAXT, cfg['C']) if cfg['pos'] == 'learned' else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg['L']))
        self.lnf = norm(cfg)
        HS = cfg['C'] // cfg['NH']
        inv = 10000.0 ** (-torch.arange(0, HS, 2, dtype=torch.float32) / HS)
        ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        self.register_buffer('cos', torch.cat((ang, ang), -1).cos(), persistent=False)
        self.register_buffer('sin', torch.cat((ang, ang), -1).sin(), persistent=False)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * cfg['L']) if name.endswith('proj.weight') else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith('bias'):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T, device=idx.device))
        for blk in self.blocks:
            x = blk(x, self.cos[:T], self.sin[:T])
        logits = F.linear(self.lnf(x), self.wte.weight)   # tied, over the padded vocabulary
        return F.cross_entropy(logits[..., :V].float().reshape(-1, V), targets.reshape(-1))


# Kernel (or, on the CPU, aten op) names to categories: bench/profile-categories.json, shared with bench/cuda-profile.ts
# (which gives llm.ts's ops the same categories); the first pattern that matches the lowercased name wins.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'profile-categories.json')) as f:
    CATEGORIES = json.load(f)['categories']


def category(name):
    low = name.lower()
    return next((c for c, pattern in CATEGORIES if re.search(pattern, low)), 'other')


def profile_steps(step, first, n, cuda):
    """GPU time per step (CPU time of the aten ops on the CPU) of n steps: by category, and the 20 longest kernels."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        for i in range(n):
            step(first + i)
        if cuda:
            torch.cuda.synchronize()
    kernels = defaultdict(lambda: [0, 0.0])   # name -> [calls, microseconds]
    for e in prof.events():
        if cuda and e.device_type == DeviceType.CUDA:
            us = e.time_range.elapsed_us()
        elif not cuda and e.device_type == DeviceType.CPU and e.name.startswith('aten::'):
            us = e.self_cpu_time_total   # self time: the ops' times then partition the total
        else:
            continue
        kernels[e.name][0] += 1
        kernels[e.name][1] += us
    cats = defaultdict(lambda: [0, 0.0])
    for name, (calls, us) in kernels.items():
        c = cats[category(name)]
        c[0] += calls
        c[1] += us
    per_step = lambda d: sorted(({'op': k, 'calls': c / n, 'ms': us / 1e3 / n} for k, (c, us) in d.items()),
                                key=lambda o: -o['ms'])
    return {'steps': n, 'unit': 'GPU time' if cuda else 'CPU self time of aten ops', 'categories': per_step(cats),
            'kernels': [dict(k, op=k['op'][:160], category=category(k['op'])) for k in per_step(kernels)[:20]]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default='variant-124m', choices=sorted(PRESETS))
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--seq', type=int, default=1024)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--no-compile', action='store_true')
    ap.add_argument('--profile', type=int, default=0, metavar='N', help='N more steps under torch.profiler (not timed)')
    ap.add_argument('--device', default='cuda', choices=['cuda', 'cpu'], help='cpu: a smoke test of this script only')
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision('high')
    torch.manual_seed(1)
    dev = a.device
    cuda = dev == 'cuda'
    cfg = PRESETS[a.model]
    model = GPT(cfg, a.seq).to(dev)
    params = sum(p.numel() for p in model.parameters()) - (VP - V) * cfg['C']
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=6e-4, betas=(0.9, 0.95), eps=1e-8, fused=cuda)
    step_fn = model if a.no_compile else torch.compile(model)
    g = torch.Generator(device='cpu').manual_seed(2)
    data = torch.randint(0, V, (a.warmup + a.steps + a.profile, a.batch, a.seq + 1), generator=g).to(dev)

    def step(i):
        x, y = data[i, :, :-1], data[i, :, 1:]
        with torch.autocast(device_type=dev, dtype=torch.bfloat16):
            loss = step_fn(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    t0 = time.time()
    for i in range(a.warmup):
        step(i)
    if cuda:
        torch.cuda.synchronize()
    warm_s = time.time() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    losses = [step(a.warmup + i) for i in range(a.steps)]
    if cuda:
        torch.cuda.synchronize()
    dt = (time.time() - t0) / a.steps
    peak = torch.cuda.max_memory_allocated() if cuda else 0
    prof = profile_steps(step, a.warmup + a.steps, a.profile, cuda) if a.profile > 0 else None
    print(json.dumps({
        'impl': 'pytorch', 'model': a.model, 'B': a.batch, 'T': a.seq, 'params': params,
        'ms_per_step': dt * 1e3, 'tokens_per_s': a.batch * a.seq / dt, 'warmup_s': warm_s,
        'peak_bytes': peak, 'loss_first': losses[0], 'loss_last': losses[-1],
        'torch': torch.__version__, 'device': torch.cuda.get_device_name() if cuda else 'cpu', 'compiled': not a.no_compile,
        **({'kernel_profile': prof} if prof is not None else {}),
    }))


if __name__ == '__main__':
    main()
