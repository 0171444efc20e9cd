#!/usr/bin/env python3
"""CPU experiments on the needle training recipe, with small_qwen3.SmallQwen3 (no transformers).

Samples come from `vortex eval --dump-tasks --dump-ids` files (one generator, as in train.py):
training draws fresh samples from a large pool, the held-out set comes from another seed.
Reports teacher-forced exact match on the held-out set (train.py's definition: every answer
token and the eos is the argmax).

    vortex eval --model M --tasks niah_single --context 192 --samples 50000 --seed 920000001 \
        --dump-tasks train.jsonl --dump-ids
    vortex eval ... --samples 256 --seed 910000001 --dump-tasks heldout.jsonl --dump-ids
    python3 cpu_recipe_experiment.py --train train.jsonl --heldout heldout.jsonl --steps 2000
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from small_qwen3 import SmallQwen3  # noqa: E402


def load(paths, eos_id, limit=None):
    """(task@context, example) pairs; at most `limit` per file."""
    out = []
    for p in paths.split(","):
        with open(p) as f:
            for i, line in enumerate(f):
                if limit and i >= limit:
                    break
                r = json.loads(line)
                out.append((f"{r['task']}@{r['context']}", to_example(r, eos_id)))
    return out


def to_example(row, eos_id):
    prompt, target = row["prompt_ids"], row["target_ids"] + [eos_id]
    seq = prompt + target
    return (torch.tensor(seq[:-1], dtype=torch.int16),
            torch.tensor([-100] * (len(prompt) - 1) + target, dtype=torch.int16))


def collate(examples, pad_id):
    width = max(len(x) for x, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, :len(x)] = x
        labels[i, :len(y)] = y
    return ids, labels


def losses(model, ids, labels, pad_id, lm_weight):
    hidden = model(ids)
    mask = labels != -100
    logits = model.head(hidden[mask]).float()
    target = labels[mask]
    ans = F.cross_entropy(logits, target)
    loss = ans
    if lm_weight > 0:
        nxt = ids[:, 1:]
        lm_mask = (labels[:, :-1] == -100) & (nxt != pad_id)
        lm = F.cross_entropy(model.head(hidden[:, :-1][lm_mask]).float(), nxt[lm_mask])
        loss = loss + lm_weight * lm
    correct = logits.argmax(-1) == target
    wrong = torch.zeros(ids.shape[0], dtype=torch.long).index_add_(
        0, mask.nonzero()[:, 0], (~correct).long())
    return loss, ans, correct, wrong == 0


@torch.no_grad()
def heldout_exact(model, sets, pad_id, batch=64):
    model.eval()
    out = {}
    for name, examples in sets.items():
        right = 0
        for i in range(0, len(examples), batch):
            ids, labels = collate(examples[i:i + batch], pad_id)
            _, _, _, em = losses(model, ids, labels, pad_id, 0.0)
            right += int(em.sum())
        out[name] = right / len(examples)
    model.train()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True, help="comma-separated dump files")
    ap.add_argument("--heldout", required=True, help="comma-separated dump files")
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--pad", type=int, default=0)
    ap.add_argument("--eos", type=int, default=2)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--inter", type=int, default=384)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--theta", type=float, default=1e6)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--decay", default="cosine", choices=["cosine", "constant"])
    ap.add_argument("--lm-weight", type=float, default=0.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--max-minutes", type=float, default=9.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", type=int, default=0, help="samples per train file (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    pool = [ex for _, ex in load(args.train, args.eos, args.pool)]
    rng.shuffle(pool)
    sets = {}
    for name, ex in load(args.heldout, args.eos):
        sets.setdefault(name, []).append(ex)
    model = SmallQwen3(args.vocab, args.hidden, args.inter, args.layers, args.heads,
                       args.kv_heads, args.head_dim, args.theta)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    print(f"config {vars(args)}", flush=True)
    print(f"params {sum(p.numel() for p in model.parameters()):,}, pool {len(pool)}", flush=True)
    t0, cursor = time.time(), 0
    win = [0.0, 0, 0, 0, 0]
    for step in range(1, args.steps + 1):
        if step <= args.warmup:
            lr = args.lr * step / args.warmup
        elif args.decay == "cosine":
            p = (step - args.warmup) / max(1, args.steps - args.warmup)
            lr = args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))
        else:
            lr = args.lr
        for g in opt.param_groups:
            g["lr"] = lr
        if cursor + args.batch > len(pool):
            rng.shuffle(pool)
            cursor = 0
            print("(pool wrapped)", flush=True)
        ids, labels = collate(pool[cursor:cursor + args.batch], args.pad)
        cursor += args.batch
        loss, ans, correct, em = losses(model, ids, labels, args.pad, args.lm_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        win[0] += float(ans)
        win[1] += int(correct.sum())
        win[2] += correct.numel()
        win[3] += int(em.sum())
        win[4] += em.numel()
        done = step == args.steps or time.time() - t0 > args.max_minutes * 60
        if step % args.eval_every == 0 or done:
            n = args.eval_every if step % args.eval_every == 0 else step % args.eval_every
            res = heldout_exact(model, sets, args.pad)
            print(f"step {step} ({time.time() - t0:.0f} s) train answer loss {win[0] / n:.3f} "
                  f"tok acc {win[1] / win[2]:.3f} exact {win[3] / win[4]:.3f} | heldout exact "
                  + " ".join(f"{k} {v:.3f}" for k, v in res.items()), flush=True)
            win = [0.0, 0, 0, 0, 0]
        if done:
            break


if __name__ == "__main__":
    main()
