#!/usr/bin/env python3
"""Trains the natural model: a small Qwen3 language model of text and code, with the synthetic
retrieval tasks of `vortex eval` mixed in so that it can retrieve across 4K-16K tokens.

The language-model data is the corpus that corpus.py builds from files already on the machine;
every token of a natural window is predicted (plain next-token cross-entropy). Task samples come
from `vortex eval --dump-tasks --dump-ids` (scripts/train_common/vortex_tasks.py) with the loss on
their answers. No loss term refers to pages, page means or any flow: the model's attention is
whatever language modelling and retrieval make it.

    python3 scripts/train_natural/corpus.py --out /tmp/corpus
    python3 scripts/train_natural/train.py --vortex build/vortex --corpus /tmp/corpus \\
        --config scripts/train_natural/runs/1_pretrain.json --out /tmp/natural

A later call continues from the saved weights with --init-from (a fresh optimizer; the
history and the step count carry on). Needs PyTorch; HF `tokenizers` to train the tokenizer
(with --tokenizer DIR an existing one is used, and vortex tokenizes). See README.md.
"""
import argparse
import contextlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train_common"))
import qwen3  # noqa: E402
from bpe_tokenizer import EOS_TOKEN, PAD_TOKEN, train_bpe, write_tokenizer_files  # noqa: E402
from vortex_tasks import TaskStream, TooShort, Vortex, collate, final_eval, log  # noqa: E402
from vortex_tasks import to_example  # noqa: E402

STATE = "training_state.json"


# ---- corpus and tokens -------------------------------------------------------------------------

def read_jsonl(path, max_docs_per_source=0):
    counts = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            n = counts.get(row["source"], 0)
            if max_docs_per_source and n >= max_docs_per_source:
                continue
            counts[row["source"]] = n + 1
            yield row


def tokenizer_sample(corpus, mb_per_source):
    """Texts for training the BPE: up to mb_per_source MB of each source's training files."""
    taken, out = {}, []
    for row in read_jsonl(os.path.join(corpus, "train.jsonl")):
        n = taken.get(row["source"], 0)
        if n >= mb_per_source * 1e6:
            continue
        taken[row["source"]] = n + len(row["text"])
        out.append(row["text"])
    return out


def hf_tokenizer(model_dir):
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    return Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))


def vortex_encode(vortex_bin, model_dir, rows, scratch):
    """Token ids of each row's text by `vortex tokenize --jsonl` (no special tokens)."""
    path = os.path.join(scratch, f"encode_{os.getpid()}.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"text": r["text"]}) + "\n")
    out = subprocess.run([vortex_bin, "tokenize", "--model", model_dir, "--jsonl", path,
                          "--no-special"], capture_output=True, text=True)
    os.remove(path)
    if out.returncode != 0:
        raise RuntimeError(f"vortex tokenize failed: {out.stderr.strip()}")
    return [json.loads(line)["ids"] for line in out.stdout.splitlines()]


def encode_split(path, tok, vortex_bin, model_dir, sep_id, scratch, max_docs):
    """Per source, one int32 array of the split's files, each followed by sep_id."""
    rows = list(read_jsonl(path, max_docs))
    if tok is not None:
        ids = [e.ids for e in tok.encode_batch([r["text"] for r in rows],
                                               add_special_tokens=False)]
    else:
        ids = vortex_encode(vortex_bin, model_dir, rows, scratch)
    per_source = {}
    for r, x in zip(rows, ids):
        per_source.setdefault(r["source"], []).append(np.asarray(x + [sep_id], dtype=np.int32))
    return {s: np.concatenate(parts) for s, parts in sorted(per_source.items())}


def check_vortex_agrees(tok, vortex_bin, model_dir, path, scratch, n=24):
    """The ids training sees must be the ids vortex gives (what evaluation will see)."""
    rows = [r for _, r in zip(range(n), read_jsonl(path, 4))]
    got = vortex_encode(vortex_bin, model_dir, rows, scratch)
    for r, v in zip(rows, got):
        hf = tok.encode(r["text"], add_special_tokens=False).ids
        if hf != v:
            first = next((i for i, (a, b) in enumerate(zip(hf, v)) if a != b), min(len(hf), len(v)))
            raise RuntimeError(f"{r['path']}: vortex and HF tokenizers disagree at token {first} "
                               f"({len(v)} vs {len(hf)} tokens)")
    return len(rows)


class NaturalWindows:
    """Random windows of seq_len + 1 tokens: a source drawn by its weight, then a start drawn
    uniformly in that source's token array (files packed back to back, separated)."""

    def __init__(self, arrays, weights, seed):
        self.arrays = {s: torch.from_numpy(a) for s, a in arrays.items() if s in weights}
        self.sources = sorted(self.arrays)
        total_w = sum(weights[s] for s in self.sources)
        self.probs = [weights[s] / total_w for s in self.sources]
        self.rng = random.Random(seed)

    def batch(self, batch, seq_len, device):
        rows = []
        for _ in range(batch):
            s = self.rng.choices(self.sources, self.probs)[0]
            a = self.arrays[s]
            if len(a) <= seq_len + 1:
                raise RuntimeError(f"source {s} has {len(a)} tokens, fewer than a window of "
                                   f"{seq_len + 1}")
            start = self.rng.randrange(0, len(a) - seq_len - 1)
            rows.append(a[start:start + seq_len + 1])
        x = torch.stack(rows).long().to(device, non_blocking=True)
        return x[:, :-1], x[:, 1:]


def heldout_windows(arrays, seq_len, count):
    """The first `count` non-overlapping windows of seq_len + 1 tokens of the held-out files,
    sources interleaved in name order (a fixed set, the same at every validation)."""
    out = []
    offsets = {s: 0 for s in arrays}
    while len(out) < count:
        progressed = False
        for s in sorted(arrays):
            a, o = arrays[s], offsets[s]
            if o + seq_len + 1 <= len(a) and len(out) < count:
                out.append(torch.from_numpy(a[o:o + seq_len + 1]).long())
                offsets[s] = o + seq_len + 1
                progressed = True
        if not progressed:
            break
    return out


# ---- losses ------------------------------------------------------------------------------------

def lm_loss(model, x, y):
    return F.cross_entropy(model.logits(model(x)).float().flatten(0, 1), y.flatten())


def answer_loss(model, ids, labels):
    """Cross-entropy on the labelled (answer) positions only; also whether each was the argmax."""
    hidden = model(ids)
    mask = labels != -100
    logits = model.logits(hidden[mask]).float()
    target = labels[mask]
    return F.cross_entropy(logits, target), logits.argmax(-1) == target, mask


def exact_per_sample(correct, mask):
    wrong = torch.zeros(mask.shape[0], dtype=torch.long, device=mask.device)
    wrong.index_add_(0, mask.nonzero()[:, 0], (~correct).long())
    return wrong == 0


def autocast(device, bf16):
    if bf16 and device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def validate(model, windows, task_sets, pad_id, device, bf16, tokens_per_batch):
    """Held-out NLL per token for each window length, and exact match on each task set."""
    model.eval()
    out = {"heldout_nll": {}, "tasks": {}}
    for seq_len, ws in windows.items():
        total, n = 0.0, 0
        b = max(1, tokens_per_batch // seq_len)
        for i in range(0, len(ws), b):
            x = torch.stack(ws[i:i + b]).to(device)
            with autocast(device, bf16):
                logits = model.logits(model(x[:, :-1])).float()
            total += float(F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten(),
                                           reduction="sum"))
            n += x[:, 1:].numel()
        out["heldout_nll"][str(seq_len)] = total / max(1, n)
    for (task, context), examples in task_sets.items():
        b = max(1, tokens_per_batch // context)
        right = 0
        for i in range(0, len(examples), b):
            ids, labels = collate(examples[i:i + b], pad_id, device)
            with autocast(device, bf16):
                _, correct, mask = answer_loss(model, ids, labels)
            right += int(exact_per_sample(correct, mask).sum())
        out["tasks"][f"{task}@{context}"] = right / len(examples)
    model.train()
    return out


def lr_at(step, progress, tcfg):
    """Linear warm-up over warmup_steps, then cosine decay to min_lr_ratio of the peak as the
    run's progress (0..1) goes."""
    if step < tcfg["warmup_steps"]:
        return tcfg["lr"] * (step + 1) / tcfg["warmup_steps"]
    floor = tcfg["min_lr_ratio"]
    return tcfg["lr"] * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def stage_at(stages, progress):
    """The stage for a progress in [0, 1): stages take shares of the run by their steps."""
    total, acc = sum(s["steps"] for s in stages), 0
    for s in stages:
        acc += s["steps"]
        if progress < acc / total:
            return s
    return stages[-1]


def is_task_step(step, share):
    return math.floor((step + 1) * share) > math.floor(step * share)


# ---- model card --------------------------------------------------------------------------------

def write_model_card(out_dir, state):
    m, last = state["model"], state["history"][-1] if state["history"] else {}
    val = [h for h in state["history"] if "heldout_nll" in h]
    lines = [
        "# natural: a small Qwen3 language model of text and code",
        "",
        "Trained by `scripts/train_natural/train.py` (see its README for the data, the recipe and "
        "how to reproduce). No loss term refers to pages, page means or any flow.",
        "",
        f"- Architecture: Qwen3ForCausalLM, {m['num_hidden_layers']} layers, hidden "
        f"{m['hidden_size']}, {m['num_attention_heads']} query / {m['num_key_value_heads']} KV "
        f"heads of {m['head_dim']}, MLP {m['intermediate_size']}, RoPE theta {m['rope_theta']:g}, "
        f"context {m['max_position_embeddings']}",
        f"- Parameters: {state['parameters']:,} (bfloat16, {state['bytes'] / 1e6:.1f} MB); "
        f"vocabulary {m['vocab_size']} (byte-level BPE)",
        f"- Training: {last.get('step', 0)} steps, {state['tokens_seen'] / 1e6:.0f}M tokens "
        f"({state['task_samples_seen']:,} task samples), "
        f"{sum(r['minutes'] for r in state['runs']):.1f} minutes of training on "
        + ", ".join(sorted({r['device'] for r in state['runs']})),
        "",
        "## Runs",
        "",
        "| run | config | steps | minutes | device | date |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(state["runs"]):
        lines.append(f"| {i + 1} | `{r['config']}` | {r['first_step']}..{r['last_step']} | "
                     f"{r['minutes']:.1f} | {r['device']} | {r['date']} |")
    lines += ["", "## Curves (held-out NLL per token at each window length; task exact match "
              "under teacher forcing)", ""]
    if val:
        lens = sorted(val[-1]["heldout_nll"], key=int)
        tasks = sorted(val[-1]["tasks"])
        lines.append("| step | train NLL | " + " | ".join(f"held-out {x}" for x in lens) + " | " +
                     " | ".join(tasks) + " |")
        lines.append("|---" * (2 + len(lens) + len(tasks)) + "|")
        for h in val:
            lines.append(f"| {h['step']} | {h.get('train_nll', float('nan')):.3f} | " +
                         " | ".join(f"{h['heldout_nll'].get(x, float('nan')):.3f}" for x in lens) +
                         " | " + " | ".join(f"{h['tasks'].get(t, float('nan')):.2f}" for t in tasks)
                         + " |")
        final = val[-1]["heldout_nll"]
        lines += ["", "Held-out perplexity (exp of the NLL above) at the last validation: " +
                  ", ".join(f"{math.exp(final[x]):.2f} at {x} tokens" for x in lens) + "."]
    if state.get("final_eval"):
        lines += ["", "## vortex eval (full attention, greedy)", ""]
        for context, r in sorted(state["final_eval"].items(), key=lambda kv: int(kv[0])):
            accs = ", ".join(f"{t} {v['accuracy']:.3f}" for t, v in r["tasks"].items())
            lines.append(f"- context {context}, {r['samples'] // max(1, len(r['tasks']))} samples "
                         f"per task: {accs}")
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ---- main --------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vortex", required=True, help="the vortex binary")
    ap.add_argument("--corpus", required=True, help="corpus.py's output directory")
    ap.add_argument("--config", required=True, help="a run configuration (runs/*.json)")
    ap.add_argument("--out", required=True, help="output model directory")
    ap.add_argument("--root", default=os.getcwd(), help="repository root (for config paths)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--init-from", default="", help="continue from this model directory's "
                    "weights, tokenizer and training_state.json (a fresh optimizer)")
    ap.add_argument("--tokenizer", default="", help="use this directory's tokenizer.json "
                    "instead of training one")
    ap.add_argument("--time-limit-min", type=float, default=0.0,
                    help="train for this many minutes: the run's progress (which picks the stage "
                    "and the learning rate) is then the larger of the step and the time shares, "
                    "so a run cut by time still passes every stage and decays its rate")
    ap.add_argument("--steps-scale", type=float, default=1.0, help="scale every stage's steps")
    ap.add_argument("--max-docs-per-source", type=int, default=0,
                    help="read at most this many files per source (smoke tests)")
    ap.add_argument("--skip-final-eval", action="store_true", help="no vortex eval at the end")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = ap.parse_args()

    with open(args.config) as f:
        cfg = json.load(f)
    tcfg = cfg["train"]
    random.seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    device = args.device
    bf16 = tcfg.get("bf16", True) and device == "cuda"
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="natural_")
    vortex_bin = os.path.abspath(args.vortex)
    vortex = Vortex(vortex_bin, out_dir, scratch)
    t_script = time.time()
    deadline = t_script + args.time_limit_min * 60 if args.time_limit_min else float("inf")
    dev_name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    log(f"torch {torch.__version__}, device {device} ({dev_name})")

    # Tokenizer: an earlier run's, a given one, or trained on the corpus and task text.
    state = None
    if args.init_from:
        src = os.path.abspath(args.init_from)
        with open(os.path.join(src, STATE)) as f:
            state = json.load(f)
    tok_src = args.init_from or args.tokenizer
    tok_src = os.path.abspath(tok_src) if tok_src else ""
    if tok_src:
        if tok_src != out_dir:
            for name in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copy(os.path.join(tok_src, name), os.path.join(out_dir, name))
        log(f"tokenizer from {tok_src}")
    else:
        k = cfg["tokenizer"]
        texts = tokenizer_sample(args.corpus, k["sample_mb_per_source"])
        boot = os.path.join(args.root, k["bootstrap_model_dir"])
        for i, task in enumerate(cfg["tasks"]):
            rows = vortex.dump(task, k["bootstrap_context"], k["task_samples"], 900 + i,
                               model_dir=boot, with_ids=False)
            texts += [r["prompt"] + r["target"] for r in rows]
        log(f"tokenizer: training BPE (vocab {k['vocab_size']}) on {len(texts)} texts")
        write_tokenizer_files(train_bpe(texts, k["vocab_size"]), out_dir,
                              cfg["model"]["max_position_embeddings"])
    tok = hf_tokenizer(out_dir)
    with open(os.path.join(out_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    vocab = {a["content"]: a["id"] for a in tj.get("added_tokens", [])}
    pad_id, eos_id = vocab.get(PAD_TOKEN), vocab.get(EOS_TOKEN)
    if pad_id is None or eos_id is None:
        raise RuntimeError(f"the tokenizer lacks {PAD_TOKEN} or {EOS_TOKEN}")
    vocab_size = max(max(tj["model"]["vocab"].values()), max(vocab.values())) + 1

    # The corpus as tokens (the separator between files is the pad token, <|endoftext|>).
    t0 = time.time()
    if tok is not None:
        n = check_vortex_agrees(tok, vortex_bin, out_dir, os.path.join(args.corpus,
                                                                        "heldout.jsonl"), scratch)
        log(f"vortex and HF tokenizers agree on {n} held-out files")
    train_arrays = encode_split(os.path.join(args.corpus, "train.jsonl"), tok, vortex_bin, out_dir,
                                pad_id, scratch, args.max_docs_per_source)
    held_arrays = encode_split(os.path.join(args.corpus, "heldout.jsonl"), tok, vortex_bin,
                               out_dir, pad_id, scratch, args.max_docs_per_source)
    log("tokens: " + ", ".join(f"{s} {len(a) / 1e6:.2f}M train / "
                               f"{len(held_arrays.get(s, [])) / 1e6:.2f}M held out"
                               for s, a in train_arrays.items()) + f" ({time.time() - t0:.0f} s)")

    # Model.
    mcfg = dict(cfg["model"], vocab_size=vocab_size)
    model = qwen3.Qwen3(mcfg)
    if state is not None:
        if state["model"] != mcfg:
            raise RuntimeError(f"--init-from: its model {state['model']} differs from the "
                               f"config's {mcfg}")
        qwen3.load_weights(model, src)
    else:
        state = {"model": mcfg, "history": [], "runs": [], "tokens_seen": 0,
                 "task_samples_seen": 0, "step": 0}
    model.to(device).train()
    n_params = model.num_parameters()
    log(f"model: {n_params:,} parameters, vocab {vocab_size}")
    fwd = torch.compile(model) if args.compile else model
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tcfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=tcfg["lr"], betas=tuple(tcfg["betas"]),
                            **({"fused": True} if device == "cuda" else {}))

    # Validation: fixed held-out windows, and task samples on seeds training never draws.
    vcfg = cfg["validation"]
    windows = {L: heldout_windows(held_arrays, L, vcfg["windows"]) for L in vcfg["seq_lens"]}
    windows = {L: w for L, w in windows.items() if w}
    task_sets = {}
    for c_i, context in enumerate(vcfg.get("task_contexts", [])):
        for t_i, task in enumerate(vcfg.get("tasks", [])):
            try:
                rows = vortex.dump(task, context, vcfg["task_samples"], 50_000 + 100 * c_i + t_i)
            except TooShort:
                continue
            task_sets[(task, context)] = [to_example(r, eos_id) for r in rows]
    log(f"validation: held-out windows {{{', '.join(f'{L}: {len(w)}' for L, w in windows.items())}}}"
        f", {len(task_sets)} task sets")

    stages = [dict(s, steps=max(1, int(s["steps"] * args.steps_scale))) for s in tcfg["stages"]]
    total = sum(s["steps"] for s in stages)
    first_step = state["step"]
    natural = NaturalWindows(train_arrays, cfg["corpus"]["weights"], cfg["seed"] + first_step)
    tasks_seed = 1_000_000 + cfg["seed"] * 1000 + len(state["runs"]) * 100_000
    stream = TaskStream(vortex, tcfg.get("batches_per_chunk", 4), tasks_seed, eos_id,
                        prefetch=min(8, max(1, (os.cpu_count() or 2) // 2)))
    t_train, run_step = time.time(), 0
    budget_s = deadline - t_train
    win = {"nat": 0.0, "nat_n": 0, "task": 0.0, "task_n": 0, "tokens": 0, "t": time.time()}
    stage, batches = None, None
    while True:
        progress = max(run_step / total, (time.time() - t_train) / budget_s)
        if progress >= 1.0:
            break
        s = stage_at(stages, progress)
        if s is not stage:
            stage = s
            share = stage.get("task_share", 0.0)
            tpb = stage.get("tokens_per_batch", tcfg["tokens_per_batch"])
            batches = None
            if share > 0:
                batches = stream.batches(stage["task_contexts"], stage.get("tasks", cfg["tasks"]),
                                         tpb, stage.get("max_samples_per_batch", 256))
            log(f"stage {stage['name']} at step {state['step']}: windows {stage['seq_lens']}, "
                f"task share {share}" + (f" at {stage['task_contexts']}" if share > 0 else ""))
        lr = lr_at(run_step, progress, tcfg)
        for g in opt.param_groups:
            g["lr"] = lr
        if batches is not None and is_task_step(run_step, share):
            examples, _ = next(batches)
            ids, labels = collate(examples, pad_id, device)
            with autocast(device, bf16):
                loss, _, _ = answer_loss(fwd, ids, labels)
            kind, ntok = "task", int(ids.numel())
            state["task_samples_seen"] += len(examples)
        else:
            seq_len = random.choice(stage["seq_lens"])
            x, y = natural.batch(max(1, tpb // seq_len), seq_len, device)
            with autocast(device, bf16):
                loss = lm_loss(fwd, x, y)
            kind, ntok = "nat", int(x.numel())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg["grad_clip"])
        opt.step()
        run_step += 1
        state["step"] += 1
        state["tokens_seen"] += ntok
        win["tokens"] += ntok
        if run_step % tcfg["log_every"] in (0, 1, tcfg["log_every"] // 2):
            win[kind] += float(loss.detach())  # a sample of the steps: few GPU syncs
            win[kind + "_n"] += 1
        if run_step % tcfg["log_every"] == 0:
            dt = time.time() - win["t"]
            nat = win["nat"] / win["nat_n"] if win["nat_n"] else float("nan")
            log(f"step {state['step']} (run {run_step}, progress {progress:.2f}) natural NLL "
                f"{nat:.3f}" + (f" task loss {win['task'] / win['task_n']:.3f}"
                                if win["task_n"] else "")
                + f" lr {lr:.2e} {win['tokens'] / dt / 1e3:.0f}K tokens/s")
            state["history"].append({"step": state["step"], "train_nll": nat, "lr": lr})
            win = {"nat": 0.0, "nat_n": 0, "task": 0.0, "task_n": 0, "tokens": 0,
                   "t": time.time()}
        if run_step % tcfg["validate_every"] == 0:
            v = validate(model, windows, task_sets, pad_id, device, bf16, tpb)
            log(f"validation at step {state['step']}: {v}")
            state["history"].append(dict(step=state["step"], **v))
    stopped = run_step < total
    if device == "cuda":
        torch.cuda.synchronize()
    minutes = (time.time() - t_train) / 60
    v = validate(model, windows, task_sets, pad_id, device, bf16, tcfg["tokens_per_batch"])
    log(f"final validation at step {state['step']}: {v}")
    last_train = next((h["train_nll"] for h in reversed(state["history"]) if "train_nll" in h),
                      float("nan"))
    if not state["history"] or state["history"][-1].get("step") != state["step"] or \
            "heldout_nll" not in state["history"][-1]:
        state["history"].append(dict(step=state["step"], train_nll=last_train, **v))
    state["runs"].append({"config": os.path.relpath(os.path.abspath(args.config), args.root),
                          "first_step": first_step, "last_step": state["step"],
                          "minutes": minutes, "device": dev_name,
                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                          "stopped_by_time_limit": stopped})
    state["bytes"] = qwen3.save_model(model, out_dir, eos_id, pad_id)
    state["parameters"] = n_params
    if not args.skip_final_eval and cfg.get("final_eval"):
        fe = cfg["final_eval"]
        state["final_eval"] = {str(c): r for c, r in final_eval(
            vortex_bin, out_dir, fe, fe["tasks"]).items()}
    with open(os.path.join(out_dir, STATE), "w") as f:
        json.dump(state, f, indent=1)
    write_model_card(out_dir, state)
    shutil.rmtree(scratch, ignore_errors=True)
    log(f"saved {out_dir} ({state['bytes'] / 1e6:.1f} MB, {minutes:.1f} min of training)")


if __name__ == "__main__":
    main()
