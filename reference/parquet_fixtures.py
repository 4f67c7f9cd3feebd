#!/usr/bin/env python3
"""Writes test/fixtures/parquet/: small Parquet files written by pyarrow, the library FineWeb's files come from,
with FineWeb's columns (text, id, dump, url, date, file_path, language, language_score, token_count), and the
texts they hold as JSON, the independent truth for test/data/parquet-pyarrow.test.ts:
  fineweb-v1-snappy.parquet   data page v1 (pyarrow's default, as FineWeb), snappy, row groups of 7 rows
  fineweb-v2-zstd.parquet     data page v2, zstd, dictionary-encoded columns, one row group
  fineweb-gzip-plain.parquet  gzip, no dictionary, small pages (several pages per row group)
Texts: English with newlines, accents, emoji, CJK, an empty string, and one long document (~70 kB).

Needs pyarrow (e.g. a venv). Run from the repository root: python3 reference/parquet_fixtures.py
"""
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq

OUT = 'test/fixtures/parquet'


def texts():
    rnd = random.Random(5)
    words = ['the', 'whale', 'café', 'naïve', 'Straße', '🙂', '中文', 'data', 'model', '\n', '\n\n', 'tokens', '—', '“quoted”']
    out = []
    for i in range(40):
        n = rnd.randint(1, 120)
        out.append(' '.join(rnd.choice(words) for _ in range(n)))
    out[3] = ''
    out[17] = ' '.join(rnd.choice(words) for _ in range(12000))   # a long document
    return out


def table(docs):
    n = len(docs)
    return pa.table({
        'text': docs,
        'id': [f'<urn:uuid:{i:08d}>' for i in range(n)],
        'dump': ['CC-MAIN-2013-20'] * n,
        'url': [f'http://example.com/{i}' for i in range(n)],
        'date': ['2013-05-18T05:48:54Z'] * n,
        'file_path': ['s3://commoncrawl/crawl-data/x.warc.gz'] * n,
        'language': ['en'] * n,
        'language_score': [0.9 + i / 1000 for i in range(n)],
        'token_count': pa.array([len(d.split()) for d in docs], type=pa.int64()),
    })


def main():
    docs = texts()
    t = table(docs)
    pq.write_table(t, f'{OUT}/fineweb-v1-snappy.parquet', row_group_size=7, compression='snappy')
    pq.write_table(t, f'{OUT}/fineweb-v2-zstd.parquet', data_page_version='2.0', compression='zstd', use_dictionary=True)
    pq.write_table(t, f'{OUT}/fineweb-gzip-plain.parquet', compression='gzip', use_dictionary=False,
                   data_page_size=4096, row_group_size=20)
    with open(f'{OUT}/texts.json', 'w') as f:
        json.dump({'pyarrow': pa.__version__, 'texts': docs}, f, ensure_ascii=False)
    print(f'wrote {OUT}: 3 files of {len(docs)} documents (pyarrow {pa.__version__})')


if __name__ == '__main__':
    main()
