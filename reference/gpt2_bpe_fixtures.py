"""GPT-2 token ids for test/data/tokenizer.test.ts, computed the way OpenAI's encoder.py computes them: the
original encoder.json + vocab.bpe, the byte-to-unicode map, greedy lowest-rank merges, and the pre-tokenizer
pattern compiled by the `regex` module (whose \\s is Unicode White_Space, as in tiktoken's Rust regex).

Strings: random ones from a pool heavy in the code points where regex dialects disagree about whitespace
(U+FEFF, U+0085, U+001C..U+001F, U+180E, U+200B, the Zs spaces), contractions and digits, plus a few fixed ones.

    apt-get install python3-regex
    python3 reference/gpt2_bpe_fixtures.py ../shared/data/gpt2   # writes test/fixtures/gpt2-bpe.json
"""
import json
import random
import sys
from pathlib import Path

import regex

PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def byte_chars():
    printable = [*range(ord('!'), ord('~') + 1), *range(ord('¡'), ord('¬') + 1), *range(ord('®'), ord('ÿ') + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def make_encoder(vocab_dir):
    encoder = json.loads((vocab_dir / 'encoder.json').read_text(encoding='utf-8'))
    lines = (vocab_dir / 'vocab.bpe').read_text(encoding='utf-8').split('\n')[1:]
    rank = {tuple(l.split()): i for i, l in enumerate(l for l in lines if l)}
    chars = byte_chars()

    def merge(word):
        word = list(word)
        while len(word) > 1:
            best = min(range(len(word) - 1), key=lambda i: rank.get((word[i], word[i + 1]), float('inf')))
            pair = (word[best], word[best + 1])
            if pair not in rank:
                break
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == pair:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode(text):
        ids = []
        for piece in PATTERN.findall(text):
            ids += [encoder[t] for t in merge(''.join(chars[b] for b in piece.encode('utf-8')))]
        return ids

    return encode


def main():
    vocab_dir = Path(sys.argv[1] if len(sys.argv) > 1 else '../shared/data/gpt2')
    encode = make_encoder(vocab_dir)
    rng = random.Random(2026)
    pool = [*' \t\n\r\x0b\x0c', '\x85', '\xa0', '\u1680', '\u2003', '\u2028', '\u202f', '\u3000', '\ufeff', '\x1c', '\x1f',
            '\u180e', '\u200b', "'s", "'ll", "'t", ' \ufeff', '\ufeff ', ' \x85', '\x85 ', '\r\n', 'a', 'Z', 'é', '日',
            '7', '٣', '²', '.', ',', '!', '-', '"', '👋🏽', '\u0301', 'the', ' the']
    strings = ['a \ufeffb', "\ufeff's x", ' \x85t', '\ufeffBOM at start', 'x\x85\x85 y', 'tab\x1cfs\x1dgs']
    strings += [''.join(rng.choice(pool) for _ in range(rng.randint(1, 24))) for _ in range(150)]
    fixture = {'source': 'reference/gpt2_bpe_fixtures.py', 'cases': [[s, encode(s)] for s in strings]}
    out = Path(__file__).resolve().parent.parent / 'test' / 'fixtures' / 'gpt2-bpe.json'
    out.write_text(json.dumps(fixture, ensure_ascii=True) + '\n', encoding='utf-8')
    print(f'wrote {out}: {len(strings)} strings')


if __name__ == '__main__':
    main()
