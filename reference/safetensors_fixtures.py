"""Writes test/fixtures/safetensors/dtypes.safetensors with the `safetensors` package (the format's reference
implementation) and test/fixtures/safetensors/expected.json: what torch reads from it (F16/BF16 as float32,
I64/U16/U8 as integers), and torch's float32 -> bfloat16 conversion of special bit patterns.
Needs torch and safetensors (pip); run: python reference/safetensors_fixtures.py"""

import json
import math
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'safetensors')


def f32(bits):
    return torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)


def values(t):
    return [('nan' if math.isnan(v) else 'inf' if v == math.inf else '-inf' if v == -math.inf else v) for v in t.float().tolist()]


def main():
    os.makedirs(OUT, exist_ok=True)
    # every F16 class: zero, -zero, smallest and largest subnormal, smallest normal, 1, -2, 1/3, max, inf, -inf, nan
    f16_bits = [0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0xc000, 0x3555, 0x7bff, 0x7c00, 0xfc00, 0x7e00]
    f16 = torch.tensor(f16_bits, dtype=torch.int32).to(torch.int16).view(torch.float16)
    bf16 = torch.tensor([1.0, -0.5, 3.140625, 1e-30, -65504.0, 3.0e38], dtype=torch.float32).to(torch.bfloat16)
    tensors = {
        'f16': f16.reshape(3, 4),
        'bf16': bf16,
        'i64': torch.tensor([1, -2, 50256, -(2 ** 31), 2 ** 31 - 1], dtype=torch.int64),
        'u16': torch.tensor([0, 1, 65535], dtype=torch.int32).to(torch.uint16) if hasattr(torch, 'uint16') else None,
        'u8': torch.tensor([0, 7, 255], dtype=torch.uint8),
        'i32': torch.tensor([[-7, 8], [2 ** 31 - 1, -(2 ** 31)]], dtype=torch.int32),
        'ünïcode—名前': torch.tensor([0.25, -8.0], dtype=torch.float32),
    }
    tensors = {k: v for k, v in tensors.items() if v is not None}
    metadata = {'note': 'héllo — 日本語 ✓', 'format': 'pt'}
    save_file(tensors, os.path.join(OUT, 'dtypes.safetensors'), metadata=metadata)

    # float32 -> bfloat16 (round to nearest even) of special bit patterns, as torch converts them
    bf16_in = [0x3f808000, 0x3f818000, 0x3f80c000, 0x7f7fffff, 0xff7fffff, 0x7f7f7fff, 0x00000001, 0x807fffff,
               0x7f800000, 0xff800000, 0x7f800001, 0x7fc00000, 0xffc00000, 0x7fffffff, 0x00000000, 0x80000000]
    bf16_out = f32(bf16_in).to(torch.bfloat16).view(torch.int16).to(torch.int32).bitwise_and(0xffff).tolist()

    expected = {
        'metadata': metadata,
        'shapes': {k: list(v.shape) for k, v in tensors.items()},
        'dtypes': {k: str(v.dtype).replace('torch.', '') for k, v in tensors.items()},
        'f16': values(f16),
        'bf16': values(bf16),
        'i64': tensors['i64'].tolist(),
        'u16': [0, 1, 65535] if 'u16' in tensors else None,
        'u8': tensors['u8'].tolist(),
        'i32': tensors['i32'].flatten().tolist(),
        'unicode': values(tensors['ünïcode—名前']),
        'floatToBf16': {'in': bf16_in, 'out': bf16_out},
    }
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write('\n')
    print('wrote', OUT, 'with torch', torch.__version__)


if __name__ == '__main__':
    main()
