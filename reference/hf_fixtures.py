"""Hugging Face layout fixtures: writes LlamaForCausalLM / GPT2LMHeadModel directories (config.json,
model.safetensors, expected_logits.safetensors) from the reference model in torch_reference.py.

transformers is not installable here, so the conventions are implemented from its modeling code:
Llama keeps separate q/k/v/o and gate/up/down Linears (PyTorch (out, in) layout) and rotates halves (the
same RoPE as the reference); GPT-2 uses Conv1D, whose weights are stored (in, out), and one fused c_attn.
"""
import json
import os

import numpy as np
import torch

from torch_reference import FIXTURES, GPT, bf16_bits, f32, init_golden, round_bf16, write_safetensors

TOKENS = [[5, 17, 3, 88, 42, 42, 0, 95], [60, 1, 2, 3, 4, 77, 31, 9]]   # (B=2, T=8) fixed inputs


def write_config(dirname, config):
    with open(os.path.join(dirname, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
        f.write('\n')


def write_expected(dirname, model):
    tokens = torch.tensor(TOKENS)
    with torch.no_grad():
        logits, _, _ = model(tokens)
    write_safetensors(os.path.join(dirname, 'expected_logits.safetensors'),
                      [('tokens', 'I32', tokens.numpy().astype(np.int32)), ('logits', *f32(logits))],
                      {'generator': 'reference/hf_fixtures.py', 'note': 'logits over the real vocabulary, (B,T,V)'})


def make_model(cfg, seed, dtype):
    torch.manual_seed(seed)
    model = GPT(cfg)
    init_golden(model, cfg, seed)
    if dtype == 'BF16':   # the expected logits are those of the bf16-rounded weights
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(round_bf16(p))
    return model


def encode(t, dtype):
    return ('BF16', bf16_bits(t)) if dtype == 'BF16' else f32(t)


def write_hf_llama(name, cfg, seed, dtype):
    model, V = make_model(cfg, seed, dtype), cfg['vocabSize']
    d = os.path.join(FIXTURES, name)
    os.makedirs(d, exist_ok=True)
    state = [('model.embed_tokens.weight', model.wte.weight[:V])]
    for l, b in enumerate(model.blocks):
        p = f'model.layers.{l}.'
        state.append((p + 'input_layernorm.weight', b.ln1.weight))
        for hf, mod in (('q_proj', b.attn.q), ('k_proj', b.attn.k), ('v_proj', b.attn.v), ('o_proj', b.attn.o)):
            state.append((p + f'self_attn.{hf}.weight', mod.weight))
            if mod.bias is not None:
                state.append((p + f'self_attn.{hf}.bias', mod.bias))
        state.append((p + 'post_attention_layernorm.weight', b.ln2.weight))
        for hf, mod in (('gate_proj', b.mlp.gate), ('up_proj', b.mlp.up), ('down_proj', b.mlp.down)):
            state.append((p + f'mlp.{hf}.weight', mod.weight))
            if mod.bias is not None:
                state.append((p + f'mlp.{hf}.bias', mod.bias))
    state.append(('model.norm.weight', model.lnf.weight))
    if model.lm_head is not None:
        state.append(('lm_head.weight', model.lm_head.weight[:V]))
    write_safetensors(os.path.join(d, 'model.safetensors'),
                      [(n, *encode(t, dtype)) for n, t in state], {'format': 'pt'})
    write_config(d, {
        'architectures': ['LlamaForCausalLM'], 'model_type': 'llama',
        'hidden_size': cfg['channels'], 'intermediate_size': cfg['mlpHidden'],
        'num_hidden_layers': cfg['layers'], 'num_attention_heads': cfg['heads'],
        'num_key_value_heads': cfg['kvHeads'], 'head_dim': cfg['channels'] // cfg['heads'],
        'hidden_act': 'silu', 'max_position_embeddings': cfg['contextLength'],
        'rms_norm_eps': cfg['normEps'], 'rope_theta': cfg['ropeTheta'], 'rope_scaling': None,
        'attention_bias': cfg['attnBias'], 'mlp_bias': cfg['mlpBias'], 'attention_dropout': 0.0,
        'tie_word_embeddings': cfg['tiedEmbeddings'], 'vocab_size': V, 'bos_token_id': 1, 'eos_token_id': 2,
        'initializer_range': 0.02, 'pretraining_tp': 1, 'use_cache': True,
        'torch_dtype': 'bfloat16' if dtype == 'BF16' else 'float32',
    })
    write_expected(d, model)
    print(f'{name}: LlamaForCausalLM {dtype}, tied={cfg["tiedEmbeddings"]}, attention_bias={cfg["attnBias"]}')


def write_hf_gpt2(name, cfg, seed):
    model, V = make_model(cfg, seed, 'F32'), cfg['vocabSize']
    d = os.path.join(FIXTURES, name)
    os.makedirs(d, exist_ok=True)
    state = [('transformer.wte.weight', model.wte.weight[:V]), ('transformer.wpe.weight', model.wpe.weight)]
    for l, b in enumerate(model.blocks):
        p, a, m = f'transformer.h.{l}.', b.attn, b.mlp
        state += [
            (p + 'ln_1.weight', b.ln1.weight), (p + 'ln_1.bias', b.ln1.bias),
            # Conv1D: y = x @ W + b with W (in, out), i.e. the transpose of nn.Linear's weight
            (p + 'attn.c_attn.weight', torch.cat([a.q.weight, a.k.weight, a.v.weight]).T),
            (p + 'attn.c_attn.bias', torch.cat([a.q.bias, a.k.bias, a.v.bias])),
            (p + 'attn.c_proj.weight', a.o.weight.T), (p + 'attn.c_proj.bias', a.o.bias),
            (p + 'ln_2.weight', b.ln2.weight), (p + 'ln_2.bias', b.ln2.bias),
            (p + 'mlp.c_fc.weight', m.fc.weight.T), (p + 'mlp.c_fc.bias', m.fc.bias),
            (p + 'mlp.c_proj.weight', m.down.weight.T), (p + 'mlp.c_proj.bias', m.down.bias),
        ]
    state += [('transformer.ln_f.weight', model.lnf.weight), ('transformer.ln_f.bias', model.lnf.bias)]
    write_safetensors(os.path.join(d, 'model.safetensors'), [(n, *f32(t)) for n, t in state], {'format': 'pt'})
    write_config(d, {
        'architectures': ['GPT2LMHeadModel'], 'model_type': 'gpt2',
        'n_embd': cfg['channels'], 'n_layer': cfg['layers'], 'n_head': cfg['heads'],
        'n_positions': cfg['contextLength'], 'n_ctx': cfg['contextLength'], 'n_inner': None,
        'activation_function': 'gelu_new', 'layer_norm_epsilon': cfg['normEps'], 'vocab_size': V,
        'tie_word_embeddings': True, 'bos_token_id': V - 1, 'eos_token_id': V - 1,
        'attn_pdrop': 0.1, 'embd_pdrop': 0.1, 'resid_pdrop': 0.1, 'initializer_range': 0.02,
        'torch_dtype': 'float32',
    })
    write_expected(d, model)
    print(f'{name}: GPT2LMHeadModel F32, Conv1D weights (in, out)')
