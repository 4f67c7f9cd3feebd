#!/usr/bin/env python3
"""Writes test/fixtures/hf-transformers/: tiny checkpoints saved by the real `transformers` (save_pretrained) and
their logits, the independent truth for importing what transformers itself writes (test/io/hf-transformers.test.ts):
a tied LlamaForCausalLM with rope_theta 500000 (transformers 5 stores it under rope_parameters), an untied one
with rms_norm_eps 1e-6, and a GPT2LMHeadModel. Vocabulary 128, so the files stay small. Every weight, norms
included, is random, so a mis-mapped tensor cannot hide.

Needs transformers and torch (e.g. a venv: pip install torch transformers). Run from the repository root:
  python3 reference/hf_transformers_fixtures.py
"""
import json
import os

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

OUT = 'test/fixtures/hf-transformers'
V = 128
IDS = [5, 17, 99, 3, 64, 127, 0, 42, 42, 8, 77, 31, 2, 110, 56, 19]


def llama(tied, theta, eps):
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=V, hidden_size=32, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=tied, rope_theta=theta, rms_norm_eps=eps))


def main():
    torch.manual_seed(0)
    models = {
        'llama-tied': llama(True, 500000.0, 1e-5),
        'llama-untied': llama(False, 10000.0, 1e-6),
        'gpt2': GPT2LMHeadModel(GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64)),
    }
    manifest = {'transformers': transformers.__version__, 'torch': torch.__version__, 'ids': IDS, 'models': {}}
    ids = torch.tensor([IDS])
    for name, model in models.items():
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if p.dim() == 1 else 0.0))   # 1-D (norms, biases) around 1
        model.eval()
        path = os.path.join(OUT, name)
        model.save_pretrained(path)
        os.remove(os.path.join(path, 'generation_config.json'))
        with torch.no_grad():
            logits = model(ids).logits[0].float()
        manifest['models'][name] = {'logits': logits.flatten().tolist()}
    with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
        json.dump(manifest, f)
    print(f'wrote {OUT}: {", ".join(models)} (transformers {transformers.__version__})')


if __name__ == '__main__':
    main()
