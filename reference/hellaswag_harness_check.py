#!/usr/bin/env python3
"""Runs the real lm-evaluation-harness (0.4.x) `hellaswag` task on an `llmts export` directory with local JSONL
files and compares it with llm.ts's own scores (scripts/hellaswag-scores.mjs on the same weights): every
ending's log-likelihood (relative tolerance), acc and acc_norm (exactly). The task is the harness's own
hellaswag.yaml and utils.process_docs with dataset_path json instead of the hub, so prompts, few-shot draws
(fewshot seed 1234) and scoring are the harness's. Prints one JSON line; exits 1 on a mismatch.

Needs lm_eval, transformers, torch, datasets (e.g. a venv; the GPU machine has no lm_eval).
Run: python3 reference/hellaswag_harness_check.py --hf DIR --data VAL.jsonl [--train-data TRAIN.jsonl]
       --shots K --ours OURS.json [--rtol 1e-5]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

FIELDS = ['ind', 'activity_label', 'ctx_a', 'ctx_b', 'endings', 'label']


def normalized_copy(src, dst):
    """The harness needs only these fields; the JSON loader needs the same columns in every split."""
    with open(src) as f, open(dst, 'w') as g:
        for line in f:
            if line.strip():
                d = json.loads(line)
                g.write(json.dumps({k: d[k] for k in FIELDS}) + '\n')


def write_task(tmp, data, train):
    import lm_eval
    src = os.path.join(os.path.dirname(lm_eval.__file__), 'tasks', 'hellaswag')
    shutil.copy(os.path.join(src, 'utils.py'), tmp)
    yaml = open(os.path.join(src, 'hellaswag.yaml')).read()
    assert 'dataset_path: Rowan/hellaswag' in yaml, 'unexpected hellaswag.yaml in this lm_eval'
    files = {'validation': os.path.join(tmp, 'val.jsonl'), 'train': os.path.join(tmp, 'train.jsonl')}
    normalized_copy(data, files['validation'])
    normalized_copy(train or data, files['train'])
    yaml = yaml.replace('task: hellaswag', 'task: hellaswag_local').replace('dataset_path: Rowan/hellaswag', (
        'dataset_path: json\ndataset_kwargs:\n  data_files:\n'
        f"    train: {files['train']}\n    validation: {files['validation']}"))
    yaml = '\n'.join(l for l in yaml.split('\n') if not l.startswith('  - multiple_choice') and l != 'tag:')
    open(os.path.join(tmp, 'hellaswag_local.yaml'), 'w').write(yaml)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--hf', required=True)
    ap.add_argument('--data', required=True)
    ap.add_argument('--train-data')
    ap.add_argument('--shots', type=int, default=0)
    ap.add_argument('--ours', required=True)
    ap.add_argument('--rtol', type=float, default=1e-5)
    a = ap.parse_args()
    os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    import lm_eval
    from lm_eval.tasks import TaskManager
    with tempfile.TemporaryDirectory() as tmp:
        write_task(tmp, a.data, a.train_data)
        res = lm_eval.simple_evaluate(
            model='hf', model_args=f'pretrained={a.hf},dtype=float32', tasks=['hellaswag_local'], num_fewshot=a.shots,
            device='cpu', batch_size=1, log_samples=True, task_manager=TaskManager(include_path=tmp))
    theirs = res['results']['hellaswag_local']
    samples = sorted(res['samples']['hellaswag_local'], key=lambda s: s['doc_id'])
    ours = json.load(open(a.ours))
    errors, worst = [], 0.0
    if len(samples) != ours['count']:
        errors.append(f"{len(samples)} documents in the harness, {ours['count']} in ours")
    for s in samples:
        lls = [float(r[0][0]) for r in s['resps']]
        mine = ours['examples'][s['doc_id']]['scores']
        for i, (t, o) in enumerate(zip(lls, mine)):
            rel = abs(t - o) / max(abs(t), 1e-12)
            worst = max(worst, rel)
            if rel > a.rtol:
                errors.append(f"doc {s['doc_id']} ending {i}: log-likelihood {o} ours, {t} harness")
    for key, mine in (('acc,none', ours['acc']), ('acc_norm,none', ours['acc_norm'])):
        if abs(theirs[key] - mine) > 1e-12:
            errors.append(f'{key}: {mine} ours, {theirs[key]} harness')
    print(json.dumps({
        'lm_eval': lm_eval.__version__, 'shots': a.shots, 'docs': len(samples), 'acc': theirs['acc,none'],
        'acc_norm': theirs['acc_norm,none'], 'ours': {'acc': ours['acc'], 'acc_norm': ours['acc_norm']},
        'worst_rel_loglikelihood': worst, 'ok': not errors, 'errors': errors[:10],
    }))
    sys.exit(0 if not errors else 1)


if __name__ == '__main__':
    main()
