#!/usr/bin/env python3
"""Op-level golden fixtures for the backend conformance suite (test/backend/conformance.ts).

For small, odd shapes of every Backend op this writes inputs, outputs and gradients to
test/fixtures/ops/<op>.safetensors. Inputs are drawn in float32 (so the TypeScript side sees the very same
values); the reference is computed in float64 with ordinary PyTorch ops and autograd, then stored as F32.
Each file's __metadata__ has "cases": a JSON list of {name, dims...}; tensors are named "<case>.<tensor>".
Deterministic (seeded per op) and rerunnable: `/usr/bin/python3 reference/ops_reference.py`
(Debian's python3-torch; torch 1.13 has neither F.rms_norm nor scaled_dot_product_attention, so both are
written as their formulas).
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, 'test', 'fixtures', 'ops')
F64 = torch.float64


# ---------------------------------------------------------------- safetensors, written by hand
def write_safetensors(path, tensors, metadata):
    """tensors: dict name -> torch tensor (float -> F32, integer -> I32). Atomic: temp file + rename."""
    header, blobs, offset = {'__metadata__': metadata}, [], 0
    for name, t in tensors.items():
        if t.dtype.is_floating_point:
            dtype, arr = 'F32', t.detach().to(torch.float32).contiguous().numpy().astype('<f4')
        else:
            dtype, arr = 'I32', t.detach().to(torch.int32).contiguous().numpy().astype('<i4')
        data = arr.tobytes()
        header[name] = {'dtype': dtype, 'shape': list(arr.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(',', ':')).encode()
    head += b' ' * ((8 - (8 + len(head)) % 8) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


class Fixture:
    """Collects the cases of one op file."""

    def __init__(self, op, seed):
        self.op, self.cases, self.tensors = op, [], {}
        self.gen = torch.Generator().manual_seed(seed)

    def randn(self, *shape, scale=1.0, shift=0.0):
        """float32 draw, returned as a float64 leaf that requires grad (exactly the stored values)."""
        x = torch.randn(*shape, generator=self.gen, dtype=torch.float32) * scale + shift
        return x.to(F64).requires_grad_(True)

    def case(self, name, dims, **tensors):
        self.cases.append({'name': name, **dims})
        for k, v in tensors.items():
            self.tensors[f'{name}.{k}'] = v

    def save(self):
        meta = {'cases': json.dumps(self.cases), 'generator': 'reference/ops_reference.py',
                'torch': torch.__version__}
        path = os.path.join(OUT_DIR, f'{self.op}.safetensors')
        write_safetensors(path, self.tensors, meta)
        print(f'{path}: {len(self.cases)} cases, {os.path.getsize(path)} bytes')


def grads(out, dout, *inputs):
    """Gradients of sum(out · dout) with respect to inputs (dout plays the upstream gradient)."""
    return torch.autograd.grad((out * dout).sum(), inputs)


# ---------------------------------------------------------------- ops
def encoder():
    fx = Fixture('encoder', 101)
    for name, B, T, C, Vp, maxT, pos, learned in [('learned', 2, 3, 5, 7, 8, 0, True),
                                                  ('learned_pos3', 2, 3, 5, 7, 8, 3, True),
                                                  ('rope', 2, 4, 6, 9, 0, 0, False)]:
        tokens = torch.randint(0, Vp, (B, T), generator=fx.gen)
        tokens[1, 0] = tokens[0, 0]  # a repeated token: its rows of dwte must add up
        wte = fx.randn(Vp, C)
        wpe = fx.randn(maxT, C) if learned else None
        out = F.embedding(tokens, wte)
        if learned:
            out = out + wpe[pos:pos + T].unsqueeze(0)
        dout = fx.randn(B, T, C).detach()
        t = dict(tokens=tokens, wte=wte, out=out, dout=dout)
        if learned:
            t['wpe'] = wpe
        if pos == 0:  # encoderBackward has no posStart: training always starts at position 0
            g = grads(out, dout, *([wte, wpe] if learned else [wte]))
            t['dwte'] = g[0]
            if learned:
                t['dwpe'] = g[1]
        fx.case(name, dict(B=B, T=T, C=C, Vp=Vp, maxT=maxT, posStart=pos, learned=learned, backward=pos == 0), **t)
    fx.save()


def layernorm():
    fx = Fixture('layernorm', 102)
    for name, N, C, eps, shift in [('small', 6, 7, 1e-5, 0.5), ('wide_offset', 3, 33, 1e-5, 4.0)]:
        inp, w, b = fx.randn(N, C, scale=2.0, shift=shift), fx.randn(C, scale=0.5, shift=1.0), fx.randn(C)
        out = F.layer_norm(inp, (C,), w, b, eps)
        mean = inp.mean(-1)
        rstd = 1 / torch.sqrt(inp.var(-1, unbiased=False) + eps)
        dout = fx.randn(N, C).detach()
        dinp, dw, db = grads(out, dout, inp, w, b)
        fx.case(name, dict(N=N, C=C, eps=eps), inp=inp, weight=w, bias=b, out=out, mean=mean, rstd=rstd,
                dout=dout, dinp=dinp, dweight=dw, dbias=db)
    fx.save()


def rmsnorm():
    fx = Fixture('rmsnorm', 103)
    for name, N, C, eps in [('small', 6, 7, 1e-5), ('wide', 3, 33, 1e-6)]:
        inp, w = fx.randn(N, C, scale=2.0), fx.randn(C, scale=0.5, shift=1.0)
        rstd = torch.rsqrt(inp.pow(2).mean(-1) + eps)  # Llama's LlamaRMSNorm formula
        out = inp * rstd.unsqueeze(-1) * w
        dout = fx.randn(N, C).detach()
        dinp, dw = grads(out, dout, inp, w)
        fx.case(name, dict(N=N, C=C, eps=eps), inp=inp, weight=w, out=out, rstd=rstd, dout=dout, dinp=dinp, dweight=dw)
    fx.save()


def matmul():
    fx = Fixture('matmul', 104)
    # 'tiles' has full 4x4 tiles plus ragged edges and spans more than one 64-row/column backward chunk
    for name, N, C, OC, has_bias in [('bias', 5, 7, 9, True), ('nobias', 8, 16, 12, False), ('tiles', 70, 19, 66, True)]:
        inp, w = fx.randn(N, C), fx.randn(OC, C, scale=0.5)
        b = fx.randn(OC) if has_bias else None
        out = F.linear(inp, w, b)
        dout = fx.randn(N, OC).detach()
        g = grads(out, dout, *([inp, w, b] if has_bias else [inp, w]))
        t = dict(inp=inp, weight=w, out=out, dout=dout, dinp=g[0], dweight=g[1])
        if has_bias:
            t.update(bias=b, dbias=g[2])
        fx.case(name, dict(N=N, C=C, OC=OC, bias=has_bias), **t)
    fx.save()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_hf(x, pos_start, theta):
    """Hugging Face Llama RoPE on x: (B, heads, T, HS), angles by token position, computed in float64."""
    T, HS = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, HS, 2, dtype=F64) / HS))
    freqs = torch.outer(torch.arange(pos_start, pos_start + T, dtype=F64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def split_heads(qkv, NH, KVH, HS):
    """qkv: (B, T, (NH+2KVH)·HS) -> q (B,NH,T,HS), k and v (B,KVH,T,HS)."""
    B, T, _ = qkv.shape
    q, k, v = qkv.split([NH * HS, KVH * HS, KVH * HS], dim=-1)
    heads = lambda x, n: x.view(B, T, n, HS).transpose(1, 2)
    return heads(q, NH), heads(k, KVH), heads(v, KVH)


def rope():
    fx = Fixture('rope', 105)
    for name, B, T, NH, KVH, HS, theta, pos in [('gqa', 2, 5, 4, 2, 6, 10000.0, 0), ('mha_pos7', 1, 4, 2, 2, 8, 10000.0, 7),
                                                ('mqa_theta500', 2, 3, 4, 1, 4, 500.0, 2)]:
        qkv = fx.randn(B, T, (NH + 2 * KVH) * HS)
        q, k, v = split_heads(qkv, NH, KVH, HS)
        merge = lambda x: x.transpose(1, 2).reshape(B, T, -1)
        out = torch.cat([merge(rope_hf(q, pos, theta)), merge(rope_hf(k, pos, theta)), merge(v)], dim=-1)
        dout = fx.randn(*out.shape).detach()
        (dqkv,) = grads(out, dout, qkv)
        fx.case(name, dict(B=B, T=T, NH=NH, KVH=KVH, HS=HS, theta=theta, posStart=pos),
                qkv=qkv, out=out, dout=dout, dqkv=dqkv)
    fx.save()


def attention():
    fx = Fixture('attention', 106)
    for name, B, T, NH, KVH, HS in [('mha', 2, 7, 4, 4, 8), ('gqa', 2, 7, 4, 2, 8), ('mqa', 2, 7, 4, 1, 8),
                                    ('group3', 1, 5, 6, 2, 6), ('long', 1, 67, 2, 1, 8)]:  # long: > 64-query blocks
        qkv = fx.randn(B, T, (NH + 2 * KVH) * HS, scale=1.5)
        q, k, v = split_heads(qkv, NH, KVH, HS)
        k, v = k.repeat_interleave(NH // KVH, dim=1), v.repeat_interleave(NH // KVH, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(HS)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        scores = scores.masked_fill(~mask, float('-inf'))
        lse = torch.logsumexp(scores, dim=-1)  # (B, NH, T)
        out = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, NH * HS)
        dout = fx.randn(B, T, NH * HS).detach()
        (dqkv,) = grads(out, dout, qkv)
        fx.case(name, dict(B=B, T=T, NH=NH, KVH=KVH, HS=HS), qkv=qkv, out=out, lse=lse, dout=dout, dqkv=dqkv)
    fx.save()


def gelu():
    fx = Fixture('gelu', 107)
    inp = torch.cat([torch.linspace(-6, 6, 25, dtype=F64), fx.randn(22, scale=2.0).detach()]).requires_grad_(True)
    out = F.gelu(inp, approximate='tanh')
    dout = fx.randn(inp.numel()).detach()
    (dinp,) = grads(out, dout, inp)
    fx.case('mixed', dict(n=inp.numel()), inp=inp, out=out, dout=dout, dinp=dinp)
    fx.save()


def swiglu():
    fx = Fixture('swiglu', 108)
    for name, N, H in [('small', 5, 7), ('row', 1, 16)]:
        inp = fx.randn(N, 2 * H, scale=2.0)
        gate, up = inp.split([H, H], dim=-1)
        out = F.silu(gate) * up
        dout = fx.randn(N, H).detach()
        (dinp,) = grads(out, dout, inp)
        fx.case(name, dict(N=N, H=H), inp=inp, out=out, dout=dout, dinp=dinp)
    fx.save()


def residual():
    fx = Fixture('residual', 109)
    a, b = fx.randn(11), fx.randn(11)
    fx.case('small', dict(n=11), a=a, b=b, out=a + b)
    fx.save()


def crossentropy():
    fx = Fixture('crossentropy', 110)
    for name, N, V, Vp, scale, targets in [('padded', 7, 10, 16, 3.0, [0, 9, -1, 3, 5, -1, 2]),
                                           ('large_logits', 3, 5, 8, 40.0, [4, 0, 2])]:
        logits = fx.randn(N, Vp, scale=scale).detach()
        logits[:, V:] = 50.0  # garbage in the padded columns: they must not take part
        logits.requires_grad_(True)
        tgt = torch.tensor(targets, dtype=torch.int64)
        real = logits[:, :V]
        losses = F.cross_entropy(real, tgt, ignore_index=-1, reduction='none')
        probs = F.pad(torch.softmax(real, dim=-1), (0, Vp - V))
        dloss_scale = 0.37
        (dlogits,) = torch.autograd.grad(losses.sum() * dloss_scale, logits)
        fx.case(name, dict(N=N, V=V, Vp=Vp, dlossScale=dloss_scale), logits=logits, targets=tgt.to(torch.int32),
                losses=losses, probs=probs, dlogits=dlogits)
    fx.save()


def adamw():
    fx = Fixture('adamw', 111)
    for name, n, steps, opts in [
        ('decay_clip', 50, 3, dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weightDecay=0.1, gradScale=0.5)),
        ('nodecay', 20, 2, dict(lr=3e-3, beta1=0.8, beta2=0.999, eps=1e-6, weightDecay=0.0, gradScale=1.0)),
    ]:
        p0 = fx.randn(n).detach()
        gs = [fx.randn(n).detach() for _ in range(steps)]
        p = torch.nn.Parameter(p0.clone())
        opt = torch.optim.AdamW([p], lr=opts['lr'], betas=(opts['beta1'], opts['beta2']), eps=opts['eps'],
                                weight_decay=opts['weightDecay'])
        t = dict(params=p0)
        for s, g in enumerate(gs, start=1):
            p.grad = g * opts['gradScale']
            opt.step()
            st = opt.state[p]
            t.update({f'grads{s}': g, f'params{s}': p.detach().clone(), f'm{s}': st['exp_avg'].clone(),
                      f'v{s}': st['exp_avg_sq'].clone()})
        fx.case(name, dict(n=n, steps=steps, **opts), **t)
    fx.save()


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for make in (encoder, layernorm, rmsnorm, matmul, rope, attention, gelu, swiglu, residual, crossentropy, adamw):
        make()
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR))
    print(f'total {total} bytes')


if __name__ == '__main__':
    main()
