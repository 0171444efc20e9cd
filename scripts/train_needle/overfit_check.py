#!/usr/bin/env python3
"""Sanity check of train.py's model and loss: fit one fixed batch of short samples.

A correct setup drives the answer loss far below ln 10 (chance on a digit) within a few hundred
steps; if it stays there, the forward (mask, positions) or the loss is at fault, not the data.

    python3 scripts/train_needle/overfit_check.py --vortex build/vortex
"""
import argparse
import json
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vortex", required=True)
    ap.add_argument("--task", default="niah_single")
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--attn", default="sdpa,eager")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "config.json")) as f:
        cfg = json.load(f)
    out = tempfile.mkdtemp(prefix="overfit_")
    vortex = train.Vortex(os.path.abspath(args.vortex), out, out)
    tasks = list(cfg["tasks"].keys())
    tok = train.train_tokenizer(cfg, vortex, os.getcwd(), cfg["seeds"], tasks)
    train.write_tokenizer_files(tok, out, cfg["model"]["max_position_embeddings"])
    pad_id, eos_id = tok.token_to_id(train.PAD_TOKEN), tok.token_to_id(train.EOS_TOKEN)
    rows = vortex.dump(args.task, args.context, args.samples, cfg["seeds"]["train"] + 7)
    examples = [train.to_example(r, eos_id) for r in rows]
    ids, labels = train.collate(examples, pad_id, "cuda")
    fresh = vortex.dump(args.task, args.context, args.samples, cfg["seeds"]["train"] + 8)
    fresh_ids, fresh_labels = train.collate([train.to_example(r, eos_id) for r in fresh], pad_id,
                                            "cuda")
    for attn in args.attn.split(","):
        torch.manual_seed(0)
        model = train.make_model(cfg["model"], tok.get_vocab_size(), pad_id, eos_id)
        model.config._attn_implementation = attn
        model.to("cuda").train()
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
        t0 = time.time()
        for step in range(1, args.steps + 1):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss, correct, mask = train.answer_loss(model, ids, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 25 == 0 or step == 1:
                em = train.exact_match_per_sample(correct, mask).float().mean()
                print(f"{attn} step {step} loss {float(loss.detach()):.4f} "
                      f"token acc {float(correct.float().mean()):.3f} exact {float(em):.3f} "
                      f"({time.time() - t0:.0f} s)", flush=True)
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            loss, correct, mask = train.answer_loss(model, fresh_ids, fresh_labels)
        em = train.exact_match_per_sample(correct, mask).float().mean()
        print(f"{attn} unseen batch: loss {float(loss):.4f} token acc "
              f"{float(correct.float().mean()):.3f} exact {float(em):.3f}", flush=True)


if __name__ == "__main__":
    main()
