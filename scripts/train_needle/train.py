#!/usr/bin/env python3
"""Trains the needle model: a small Qwen3 that solves `vortex eval`'s synthetic tasks.

Every training and validation sample comes from `vortex eval --dump-tasks --dump-ids`, token
ids included, so the model learns exactly the distribution (and the tokenization) that
`vortex eval` scores; there is no second generator to drift. See README.md for the plan.

    python3 scripts/train_needle/train.py --vortex build/vortex --out models/needle

Needs PyTorch, transformers (5.x) and tokenizers; no network. Run from the repository root
(paths in config.json are relative to it) or pass --root.
"""
import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
import transformers
from tokenizers import Tokenizer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train_common"))
from bpe_tokenizer import EOS_TOKEN, PAD_TOKEN, check_tokenization, train_bpe  # noqa: E402
from bpe_tokenizer import write_tokenizer_files  # noqa: E402
from vortex_tasks import TaskStream, TooShort, Vortex, collate, final_eval, log  # noqa: E402
from vortex_tasks import to_example  # noqa: E402

# ---- tokenizer ---------------------------------------------------------------------------------

def train_tokenizer(cfg, vortex, root, seeds, tasks):
    """A byte-level BPE in Qwen3's format, trained on text of the task distribution. The
    bootstrap dump uses another tokenizer only to size the prompts; the text is what matters."""
    tcfg = cfg["tokenizer"]
    boot_dir = os.path.join(root, tcfg["bootstrap_model_dir"])
    texts = []
    for i, task in enumerate(tasks):
        rows = vortex.dump(task, tcfg["bootstrap_context"], tcfg["bootstrap_samples_per_task"],
                           seeds["bootstrap"] + i, model_dir=boot_dir, with_ids=False)
        texts += [r["prompt"] + r["target"] for r in rows]
    log(f"tokenizer: training BPE (vocab {tcfg['vocab_size']}) on {len(texts)} bootstrap samples")
    return train_bpe(texts, tcfg["vocab_size"])


# ---- model --------------------------------------------------------------------------------------

def make_model(mcfg, vocab_size, pad_id, eos_id):
    kwargs = dict(
        vocab_size=vocab_size, hidden_size=mcfg["hidden_size"],
        intermediate_size=mcfg["intermediate_size"], num_hidden_layers=mcfg["num_hidden_layers"],
        num_attention_heads=mcfg["num_attention_heads"],
        num_key_value_heads=mcfg["num_key_value_heads"], head_dim=mcfg["head_dim"],
        max_position_embeddings=mcfg["max_position_embeddings"], rms_norm_eps=mcfg["rms_norm_eps"],
        initializer_range=mcfg["initializer_range"],
        tie_word_embeddings=mcfg["tie_word_embeddings"], bos_token_id=None,
        eos_token_id=eos_id, pad_token_id=pad_id, attn_implementation="sdpa")
    theta = mcfg["rope_theta"]
    if int(transformers.__version__.split(".")[0]) >= 5:
        kwargs["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
    else:
        kwargs["rope_theta"] = theta
    cfg = transformers.Qwen3Config(**kwargs)
    # Qwen3Config keeps unknown keyword arguments silently: check that RoPE took.
    got = (cfg.rope_parameters or {}).get("rope_theta") if hasattr(cfg, "rope_parameters") \
        else cfg.rope_theta
    if got != theta:
        raise RuntimeError(f"rope_theta {theta} was not applied (config has {got})")
    return transformers.Qwen3ForCausalLM(cfg)


def grow_depth(state, model, new_layers_at):
    """A deeper model from a trained one: the layers listed in new_layers_at (indices in the new
    model) are fresh, the others take the trained layers in order. A fresh layer's output
    projections (o_proj, down_proj) are zeroed, so it starts as the identity on the residual
    stream and the deeper model computes exactly what the trained one did."""
    if not new_layers_at:
        return state
    n_new = model.config.num_hidden_layers
    fresh = model.state_dict()
    out = {k: v for k, v in state.items() if ".layers." not in k}
    old_i = 0
    for i in range(n_new):
        prefix = f"model.layers.{i}."
        if i in new_layers_at:
            for k, v in fresh.items():
                if k.startswith(prefix):
                    zero = k.endswith("o_proj.weight") or k.endswith("down_proj.weight")
                    out[k] = torch.zeros_like(v) if zero else v.clone()
        else:
            src = f"model.layers.{old_i}."
            for k, v in state.items():
                if k.startswith(src):
                    out[prefix + k[len(src):]] = v
            old_i += 1
    if any(k.startswith(f"model.layers.{old_i}.") for k in state):
        raise RuntimeError("new_layers_at: the trained model has more layers than fit")
    return out


def answer_loss(model, ids, labels, pad_id=None, lm_weight=0.0, lead_weight=1.0, lead_tokens=2):
    """Cross-entropy on the labelled positions only: the head runs on a few rows per sample
    instead of every position. With lm_weight > 0 an auxiliary next-token loss on the prompt
    (pads excluded) is added: its dense signal grows the copying (induction) heads that the
    answer-only loss alone leaves on a plateau at chance (loss ln 10 on the digits).

    lead_weight > 1 weighs the first lead_tokens answer tokens of each sample that much more.
    Under teacher forcing the choice of WHICH needle (or which chain of `vt`) to retrieve is made
    almost entirely on the first content token; every later token only continues the copy given
    the right prefix. With plain averaging that choice is one token in ~25 of a `vt` answer, so
    the gradient that grows key matching is diluted ~25x."""
    hidden = model.model(input_ids=ids, use_cache=False).last_hidden_state
    mask = labels != -100
    logits = model.lm_head(hidden[mask]).float()
    target = labels[mask]
    if lead_weight != 1.0:
        # rank of each labelled position within its row (0 = the first answer token)
        rank = (mask.long().cumsum(dim=1) - 1)[mask]
        w = torch.where(rank < lead_tokens, lead_weight, 1.0)
        per_tok = F.cross_entropy(logits, target, reduction="none")
        loss = (per_tok * w).sum() / w.sum()
    else:
        loss = F.cross_entropy(logits, target)
    if lm_weight > 0:
        next_ids = ids[:, 1:]
        lm_mask = (labels[:, :-1] == -100) & (next_ids != pad_id)
        lm_logits = model.lm_head(hidden[:, :-1][lm_mask]).float()
        loss = loss + lm_weight * F.cross_entropy(lm_logits, next_ids[lm_mask])
    return loss, logits.argmax(-1) == target, mask


class PageGateLoss(torch.nn.Module):
    """An auxiliary loss that teaches the model's own queries and keys to rank KV pages the way a
    page-mean flow (block_topk: score = mean over the GQA group of q . mean key of the page) ranks
    them, at the positions that decode (the labelled ones). Forward hooks capture every attention
    layer's normed q and k (before RoPE); RoPE is applied here as the model does. For each
    labelled query the target is the full attention's mass per scoreable page (pages after the
    sink and before the recent ones, as the flow's budget reserves them; mean over the group's
    heads), renormalised, and the prediction is a softmax over those pages of the page-mean
    scores with a learned temperature per layer; the loss is the KL divergence, weighted by how
    much of the attention lands on scoreable pages at all (a head that reads only the recent
    pages is not pushed). The prompt itself stays dense, as it is prefilled densely."""

    def __init__(self, model, gcfg):
        super().__init__()
        c = model.config
        self.page = gcfg.get("page_size", 16)
        self.sink, self.recent = gcfg.get("sink", 1), gcfg.get("recent", 2)
        self.layers = [i for i in range(c.num_hidden_layers) if i not in gcfg.get("skip_layers", [])]
        self.heads, self.kv_heads, self.head_dim = (c.num_attention_heads, c.num_key_value_heads,
                                                    c.head_dim)
        theta = (c.rope_parameters or {}).get("rope_theta") if hasattr(c, "rope_parameters") \
            else c.rope_theta
        self.register_buffer("inv_freq", 1.0 / (theta ** (
            torch.arange(0, self.head_dim, 2).float() / self.head_dim)), persistent=False)
        self.log_temp = torch.nn.Parameter(torch.full((len(self.layers),), math.log(4.0)))
        self.q, self.k = {}, {}
        for i in self.layers:
            attn = model.model.layers[i].self_attn
            attn.q_norm.register_forward_hook(lambda m, a, out, i=i: self.q.__setitem__(i, out))
            attn.k_norm.register_forward_hook(lambda m, a, out, i=i: self.k.__setitem__(i, out))

    def rope(self, x, pos):  # x [..., T, heads, D], pos [..., T]
        ang = pos.float()[..., None] * self.inv_freq
        ang = torch.cat([ang, ang], dim=-1)[..., None, :]
        half = x.shape[-1] // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * ang.cos() + rot * ang.sin()

    def forward(self, labels):
        mask = labels != -100
        B, T = labels.shape
        P, G = self.page, self.heads // self.kv_heads
        counts = mask.sum(1)
        A = int(counts.max())
        # The labelled positions of each row, padded to A (padding repeats the last one).
        rank = mask.long().cumsum(1) - 1
        pos = torch.zeros(B, A, dtype=torch.long, device=labels.device)
        bi, ti = mask.nonzero(as_tuple=True)
        pos[bi, rank[bi, ti]] = ti
        valid = torch.arange(A, device=labels.device)[None, :] < counts[:, None]
        pos = torch.where(valid, pos, pos.gather(1, (counts - 1).clamp(min=0)[:, None]))
        n_pages = (T + P - 1) // P
        Tp = n_pages * P
        page_of_query = pos // P  # the page holding the query (the flow's last page)
        j = torch.arange(n_pages, device=labels.device)
        scoreable = (j[None, None, :] >= self.sink) & \
                    (j[None, None, :] <= page_of_query[:, :, None] - self.recent) & valid[:, :, None]
        total = count = torch.zeros((), device=labels.device)
        for li, layer in enumerate(self.layers):
            q, k = self.q.pop(layer).float(), self.k.pop(layer).float()  # [B, T, H, D]
            k = self.rope(k, torch.arange(T, device=k.device)[None, :].expand(B, T))
            qa = self.rope(q.gather(1, pos[:, :, None, None].expand(B, A, self.heads,
                                                                    self.head_dim)), pos)
            kp = F.pad(k, (0, 0, 0, 0, 0, Tp - T))
            with torch.no_grad():  # the full attention's mass per page: the target
                logits = torch.einsum("bakgd,btkd->bkgat", qa.view(B, A, self.kv_heads, G,
                                                                  self.head_dim), kp)
                t_idx = torch.arange(Tp, device=k.device)
                causal = t_idx[None, :] <= pos[:, :, None]  # [B, A, Tp]
                logits = logits / math.sqrt(self.head_dim)
                logits = logits.masked_fill(~causal[:, None, None], float("-inf"))
                probs = logits.softmax(-1).view(B, self.kv_heads, G, A, n_pages, P).sum(-1)
                mass = probs.mean(2)  # [B, Hkv, A, pages]
                mass = mass * scoreable[:, None]
                weight = mass.sum(-1)  # share of the attention on scoreable pages
                target = mass / weight.clamp(min=1e-9)[..., None]
            cent = kp.view(B, n_pages, P, self.kv_heads, self.head_dim).mean(2)
            score = torch.einsum("bakgd,bpkd->bkap", qa.view(B, A, self.kv_heads, G, self.head_dim),
                                 cent) / G
            score = score * self.log_temp[li].exp() / math.sqrt(self.head_dim)
            score = score.masked_fill(~scoreable[:, None], float("-inf"))
            logp = score.log_softmax(-1)
            kl = (target * (target.clamp(min=1e-12).log() - logp.clamp(min=-1e4))).sum(-1)
            # (torch.where rather than boolean indexing: no host sync on the training path)
            has = scoreable.any(-1)[:, None].expand_as(kl)
            total = total + torch.where(has, kl * weight, 0.0).sum()
            count = count + torch.where(has, weight, 0.0).sum()
        self.q.clear()
        self.k.clear()
        return total / count.clamp(min=1e-9)


def exact_match_per_sample(correct, mask):
    """A sample is right when every answer token (and the eos) is the argmax: under teacher
    forcing that is exactly what greedy decoding would produce."""
    per_row = torch.zeros(mask.shape[0], dtype=torch.long, device=mask.device)
    wrong = (~correct).long()
    rows = mask.nonzero()[:, 0]
    per_row.index_add_(0, rows, wrong)
    return per_row == 0


@torch.no_grad()
def validate(model, sets, pad_id, device, bf16, max_tokens_per_batch):
    model.eval()
    results = {}
    for (task, context), examples in sets.items():
        batch = max(1, max_tokens_per_batch // context)
        right = 0
        for i in range(0, len(examples), batch):
            ids, labels = collate(examples[i:i + batch], pad_id, device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16 and device == "cuda"):
                _, correct, mask = answer_loss(model, ids, labels)
            right += int(exact_match_per_sample(correct, mask).sum())
        results[(task, context)] = right / len(examples)
    model.train()
    return results


def lr_at(step, total, tcfg):
    """Linear warm-up, then cosine decay to min_lr_ratio over the planned steps. It depends on
    the step only, so a run resumed from a checkpoint continues the same curve."""
    if step < tcfg["warmup_steps"]:
        return tcfg["lr"] * (step + 1) / tcfg["warmup_steps"]
    progress = (step - tcfg["warmup_steps"]) / max(1, total - tcfg["warmup_steps"])
    floor = tcfg["min_lr_ratio"]
    return tcfg["lr"] * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def save_model(model, out_dir, pad_id, eos_id, max_bytes):
    n_params = sum(p.numel() for p in model.parameters())
    dtype = torch.float32 if n_params * 4 <= max_bytes else torch.bfloat16
    model.to(dtype)
    model.save_pretrained(out_dir)  # safetensors, tied lm_head not stored
    model.to(torch.float32)
    # Written by hand so the file is there whatever the transformers version does.
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": eos_id, "pad_token_id": pad_id, "do_sample": False}, f, indent=1)
    size = os.path.getsize(os.path.join(out_dir, "model.safetensors"))
    if size > max_bytes:
        raise RuntimeError(f"model.safetensors is {size} bytes, over the {max_bytes} limit")
    return n_params, str(dtype).replace("torch.", ""), size


CHECKPOINT = "checkpoint.pt"


def save_checkpoint(out_dir, model, opt, step, samples_seen, history, next_seed, cfg):
    """Everything a later call needs to continue (--resume): weights, optimizer moments, the
    step (the stage and the learning rate follow from it) and the sample stream's seed. Written
    to a temporary file first, so a call killed mid-write keeps the previous checkpoint."""
    path = os.path.join(out_dir, CHECKPOINT)
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "samples_seen": samples_seen, "history": history, "next_seed": next_seed,
                "model_config": cfg["model"], "stages": cfg["train"]["stages"]}, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_checkpoint(resume_dir, cfg):
    ckpt = torch.load(os.path.join(resume_dir, CHECKPOINT), map_location="cpu")
    if ckpt["model_config"] != cfg["model"]:
        raise RuntimeError(f"{resume_dir}/{CHECKPOINT}: its model section differs from the "
                           f"config's ({ckpt['model_config']} vs {cfg['model']})")
    return ckpt


def write_model_card(out_dir, cfg, summary, evals):
    m = cfg["model"]
    ran = {}  # a stage cut by a time limit and resumed has two entries
    for h in summary["history"]:
        if "stage" in h:
            ran[h["stage"]] = ran.get(h["stage"], 0) + h["steps"]
    lines = [
        "# needle: a small Qwen3 that retrieves",
        "",
        "Trained by `scripts/train_needle/train.py` on samples of `vortex eval`'s synthetic tasks "
        "(prompts and token ids from `vortex eval --dump-tasks --dump-ids`), loss on the answer "
        "tokens only.",
        "",
        f"- Architecture: Qwen3ForCausalLM, {m['num_hidden_layers']} layers, hidden "
        f"{m['hidden_size']}, {m['num_attention_heads']} query / {m['num_key_value_heads']} KV heads "
        f"of {m['head_dim']}, MLP {m['intermediate_size']}, RoPE theta {m['rope_theta']:g}, "
        f"context {m['max_position_embeddings']}",
        f"- Parameters: {summary['parameters']:,} ({summary['dtype']}, "
        f"{summary['bytes'] / 1e6:.1f} MB); vocabulary {summary['vocab_size']} (byte-level BPE)",
        f"- Training: {summary['steps']} steps of about {cfg['train']['tokens_per_batch']} tokens, "
        f"{summary['samples_seen']:,} samples, {summary['minutes']:.1f} minutes on "
        f"{summary['device_name']}",
        f"- Tasks (weight): " + ", ".join(f"{t} ({w:g})" for t, w in cfg["tasks"].items()),
        "- Curriculum (steps run of steps planned): " + "; ".join(
            f"{s['name']}: {ran.get(s['name'], 0)} of {s['steps']} steps at contexts "
            f"{', '.join(map(str, s['contexts']))}" for s in cfg["train"]["stages"]),
        "",
        f"## Accuracy (vortex eval, full attention, greedy, seed {cfg['final_eval']['seed']})",
        "",
    ]
    if evals:
        tasks = list(next(iter(evals.values()))["tasks"].keys())
        lines.append("| context | samples per task | " + " | ".join(tasks) + " | overall |")
        lines.append("|---" * (len(tasks) + 3) + "|")
        for context, r in sorted(evals.items()):
            cells = [f"{r['tasks'][t]['accuracy']:.3f}" if t in r["tasks"] else "-" for t in tasks]
            per_task = r["samples"] // max(1, len(r["tasks"]))
            lines.append(f"| {context} | {per_task} | " + " | ".join(cells) +
                         f" | {r['accuracy']:.3f} |")
    else:
        lines.append("(no vortex eval results: see the training log)")
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ---- main ---------------------------------------------------------------------------------------

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vortex", required=True, help="the vortex binary")
    ap.add_argument("--out", required=True, help="output model directory")
    ap.add_argument("--config", default=os.path.join(here, "config.json"))
    ap.add_argument("--root", default=os.getcwd(), help="repository root (for config paths)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps-scale", type=float, default=1.0,
                    help="multiply every stage's steps (e.g. 0.01 for a smoke run)")
    ap.add_argument("--skip-final-eval", action="store_true")
    ap.add_argument("--time-limit-min", type=float, default=0.0,
                    help="stop training once this many minutes have passed since the script "
                         "started (0 = no limit); the model and a checkpoint are saved, and "
                         "--resume OUT continues the run in a later call")
    ap.add_argument("--resume", default="",
                    help="continue from the checkpoint (and tokenizer) in this directory, "
                         "usually the previous call's --out")
    ap.add_argument("--init-from", default="",
                    help="start from the weights (and tokenizer) of a saved model directory, with a "
                         "fresh optimizer and the config's stages (a continuation that fits one "
                         "call when the checkpoint cannot travel)")
    ap.add_argument("--train-seed-offset", type=int, default=0,
                    help="added to the training seed (a continuation sees fresh samples)")
    ap.add_argument("--eval-unfinished", action="store_true",
                    help="run the final vortex eval even when the time limit stopped training "
                         "before the last step (by default only a finished run is evaluated)")
    ap.add_argument("--log-every", type=int, default=0, help="override train.log_every")
    ap.add_argument("--eval-samples", type=int, default=0,
                    help="override final_eval.samples_per_task")
    ap.add_argument("--eval-contexts", default="",
                    help="override final_eval.contexts (comma-separated)")
    ap.add_argument("--eval-timeout", type=float, default=None,
                    help="seconds each final vortex eval may take")
    args = ap.parse_args()

    with open(args.config) as f:
        cfg = json.load(f)
    tcfg, seeds = cfg["train"], cfg["seeds"]
    if args.log_every:
        tcfg["log_every"] = args.log_every
    if args.eval_samples:
        cfg["final_eval"]["samples_per_task"] = args.eval_samples
    if args.eval_contexts:
        cfg["final_eval"]["contexts"] = [int(c) for c in args.eval_contexts.split(",")]
    tasks = list(cfg["tasks"].keys())
    random.seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    vortex_bin = os.path.abspath(args.vortex)
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="needle_")
    vortex = Vortex(vortex_bin, out_dir, scratch)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, device {args.device}")

    t_script = time.time()
    ckpt = load_checkpoint(args.resume, cfg) if args.resume else None
    # Tokenizer first: the dumps are sized with it. A resumed run keeps the one it trained with.
    if ckpt is not None:
        tok = Tokenizer.from_file(os.path.join(args.resume, "tokenizer.json"))
        log(f"resuming from {args.resume} at step {ckpt['step']}")
    elif args.init_from:
        tok = Tokenizer.from_file(os.path.join(args.init_from, "tokenizer.json"))
        log(f"starting from the weights of {args.init_from}")
    elif cfg["tokenizer"]["mode"] == "train":
        tok = train_tokenizer(cfg, vortex, args.root, seeds, tasks)
    else:
        tok = Tokenizer.from_file(os.path.join(args.root, cfg["tokenizer"]["path"]))
    write_tokenizer_files(tok, out_dir, cfg["model"]["max_position_embeddings"])
    pad_id, eos_id = tok.token_to_id(PAD_TOKEN), tok.token_to_id(EOS_TOKEN)
    if pad_id is None or eos_id is None:
        raise RuntimeError(f"the tokenizer lacks {PAD_TOKEN} or {EOS_TOKEN}")
    vocab_size = tok.get_vocab_size()
    # (--dump-tasks reads only tokenizer.json, so the directory serves vortex from here on.)

    # Held-out validation sets, on seeds training never uses.
    val_sets = {}
    vcfg = cfg["validation"]
    for c_i, context in enumerate(vcfg["contexts"]):
        for t_i, task in enumerate(tasks):
            try:
                rows = vortex.dump(task, context, vcfg["samples_per_task"],
                                   seeds["validation"] + 100 * c_i + t_i)
            except TooShort:
                continue
            check_tokenization(tok, rows[:4])
            val_sets[(task, context)] = [to_example(r, eos_id) for r in rows]
    log(f"validation: {len(val_sets)} task/context sets; vortex and HF tokenization agree")

    device = args.device
    model = make_model(cfg["model"], vocab_size, pad_id, eos_id)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    elif args.init_from:
        init = transformers.Qwen3ForCausalLM.from_pretrained(args.init_from, dtype=torch.float32)
        state = grow_depth(init.state_dict(), model, cfg["model"].get("new_layers_at", []))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if [m for m in missing if "lm_head" not in m] or unexpected:
            raise RuntimeError(f"--init-from: missing {missing}, unexpected {unexpected}")
        model.tie_weights()
        del init, state
    model.to(device)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params:,} parameters, vocab {vocab_size}")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    gate = None
    if tcfg.get("gate_loss", {}).get("weight", 0.0) > 0:
        gate = PageGateLoss(model, tcfg["gate_loss"]).to(device)
        no_decay = no_decay + [gate.log_temp]
        log(f"page-gate loss on layers {gate.layers}, weight {tcfg['gate_loss']['weight']}")
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tcfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=tcfg["lr"], betas=tuple(tcfg["betas"]),
                            **({"fused": True} if device == "cuda" else {}))
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
    bf16 = tcfg["bf16"] and device == "cuda"

    stages = [dict(s, steps=max(1, int(s["steps"] * args.steps_scale))) for s in tcfg["stages"]]
    total = sum(s["steps"] for s in stages)
    stream = TaskStream(vortex, tcfg["batches_per_chunk"], seeds["train"] + args.train_seed_offset,
                        eos_id,
                        prefetch=min(8, max(1, (os.cpu_count() or 2) // 2)))
    step, samples_seen, history = 0, 0, []
    if ckpt is not None:
        step, samples_seen, history = ckpt["step"], ckpt["samples_seen"], ckpt["history"]
        stream.next_seed = ckpt["next_seed"]
        del ckpt
    t0 = time.time()
    deadline = t_script + args.time_limit_min * 60 if args.time_limit_min else float("inf")
    ckpt_every = tcfg.get("checkpoint_every", tcfg["validate_every"])
    stopped = False
    stage_end = 0
    for stage in stages:
        stage_end += stage["steps"]
        if step >= stage_end:
            continue  # done before the checkpoint this run resumed from
        weights = {t: stage.get("tasks", cfg["tasks"]).get(t, 0.0) for t in tasks}
        tokens_per_batch = stage.get("tokens_per_batch", tcfg["tokens_per_batch"])
        max_samples = stage.get("max_samples_per_batch", tcfg.get("max_samples_per_batch", 1 << 30))
        log(f"stage {stage['name']}: steps {step}..{stage_end} of {total}, contexts "
            f"{stage['contexts']}, tasks {weights}, at most {max_samples} samples per batch")
        # A stage may train on task variants (e.g. "variant": {"vt_chains": 4}); validation and
        # the final evaluation always use the evaluation's tasks.
        batches = stream.batches(stage["contexts"], weights, tokens_per_batch, max_samples,
                                 stage.get("variant"))
        checked = False
        stage_step0, stage_t0, last_log_step = step, time.time(), step
        win_loss, win_tok, win_tok_ok, win_seq, win_seq_ok, win_t = 0.0, 0, 0, 0, 0, time.time()
        win_wait = 0.0  # seconds spent waiting for vortex's samples
        while step < stage_end:
            if time.time() >= deadline:
                log(f"time limit: stopping at step {step} of {total}")
                stopped = True
                break
            t_wait = time.time()
            examples, rows = next(batches)
            win_wait += time.time() - t_wait
            if not checked:
                check_tokenization(tok, rows[:2])
                checked = True
            ids, labels = collate(examples, pad_id, device)
            lr = lr_at(step, total, tcfg)
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                loss, correct, mask = answer_loss(model, ids, labels, pad_id,
                                                  tcfg.get("lm_loss_weight", 0.0),
                                                  tcfg.get("lead_token_weight", 1.0),
                                                  tcfg.get("lead_tokens", 2))
            gate_value = None
            if gate is not None:
                gate_value = gate(labels)
                loss = loss + tcfg["gate_loss"]["weight"] * gate_value
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg["grad_clip"])
            opt.step()
            step += 1
            samples_seen += len(examples)
            if step % tcfg["log_every"] == 0:
                # (statistics of the logged step's batch only: no GPU sync on the other steps)
                win_loss += float(loss.detach())
                win_tok += int(correct.numel())
                win_tok_ok += int(correct.sum())
                em = exact_match_per_sample(correct, mask)
                win_seq += int(em.numel())
                win_seq_ok += int(em.sum())
                n = step - last_log_step
                last_log_step = step
                log(f"step {step}/{total} ctx {ids.shape[1]} batch {len(examples)} "
                    f"loss {win_loss:.4f} answer-token acc {win_tok_ok / max(1, win_tok):.3f} "
                    f"exact {win_seq_ok / max(1, win_seq):.3f} lr {lr:.2e} "
                    f"{n / (time.time() - win_t):.2f} steps/s, "
                    f"{100 * win_wait / (time.time() - win_t):.0f}% waiting for data"
                    + (f", gate KL {float(gate_value):.3f}" if gate_value is not None else ""))
                history.append({"step": step, "loss": win_loss,
                                "exact": win_seq_ok / max(1, win_seq)})
                win_loss, win_tok, win_tok_ok, win_seq, win_seq_ok = 0.0, 0, 0, 0, 0
                win_t, win_wait = time.time(), 0.0
            if step % tcfg["validate_every"] == 0 or step == total:
                t_val = time.time()
                res = validate(model, val_sets, pad_id, device, bf16, tcfg["tokens_per_batch"])
                table = "  ".join(f"{t}@{c} {a:.2f}" for (t, c), a in sorted(res.items()))
                log(f"validation (teacher-forced exact match) step {step}: {table} "
                    f"({time.time() - t_val:.1f} s)")
                history.append({"step": step, "validation": {f"{t}@{c}": a
                                                             for (t, c), a in res.items()}})
            if step % ckpt_every == 0:
                save_checkpoint(out_dir, model, opt, step, samples_seen, history,
                                stream.next_seed, cfg)
        stage_s = time.time() - stage_t0
        log(f"stage {stage['name']}: {step - stage_step0} steps in {stage_s:.0f} s "
            f"({(step - stage_step0) / max(stage_s, 1e-9):.2f} steps/s)")
        history.append({"stage": stage["name"], "steps": step - stage_step0, "seconds": stage_s})
        if stopped:
            break
    if step % tcfg["validate_every"] != 0 and step != total:
        res = validate(model, val_sets, pad_id, device, bf16, tcfg["tokens_per_batch"])
        table = "  ".join(f"{t}@{c} {a:.2f}" for (t, c), a in sorted(res.items()))
        log(f"validation (teacher-forced exact match) step {step}: {table}")
        history.append({"step": step, "validation": {f"{t}@{c}": a for (t, c), a in res.items()}})
    save_checkpoint(out_dir, model, opt, step, samples_seen, history, stream.next_seed, cfg)
    if step < total:
        log(f"checkpoint at step {step} of {total}: continue with --resume {out_dir}")
    minutes = (time.time() - t0) / 60
    n_params, dtype, size = save_model(model, out_dir, pad_id, eos_id, cfg["max_model_bytes"])
    log(f"saved {out_dir}: {n_params:,} parameters, {dtype}, {size / 1e6:.1f} MB")

    run_eval = not args.skip_final_eval and (step >= total or args.eval_unfinished)
    evals = {} if not run_eval else final_eval(vortex_bin, out_dir, cfg["final_eval"],
                                                       tasks, args.eval_timeout)
    summary = {"parameters": n_params, "dtype": dtype, "bytes": size, "vocab_size": vocab_size,
               "steps": step, "samples_seen": samples_seen, "minutes": minutes,
               "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
               "config": cfg, "history": history,
               "vortex_eval": {str(c): r for c, r in evals.items()}}
    with open(os.path.join(out_dir, "training_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    write_model_card(out_dir, cfg, summary, evals)
    shutil.rmtree(scratch, ignore_errors=True)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
