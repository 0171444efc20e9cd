#!/usr/bin/env python3
"""Reference values for `vortex eval --perplexity`: the NLL of every scored token under full
attention and under sparse decode, computed by an implementation independent of vortex.

    python3 scripts/make_perplexity_reference.py --model tests/data/models/tiny-qwen3 \\
        --text tests/data/perplexity/gpl-3.txt --out tests/data/perplexity/reference.json

Documents are built as vortex builds them (the files' tokens, no special tokens, files joined by
the tokens of a blank line, cut into consecutive windows of --context tokens). Of each document
the first context - score_tokens tokens are the prompt, prefilled densely, so the first scored
token comes from dense attention; each later token is one decode step, whose attention reads
only the pages the flow selects, by the selection rules of docs/flows.md section 5 implemented
here from the text (budget, reserved sink and recent pages, scoreable pages, top-k with ties to
the lower page). Page scores are written out per flow (Quest's key bounds; StreamingLLM scores
nothing); dense layers read every page.

The model runs in float32 through transformers' Qwen3ForCausalLM with a registered attention
function (--backend transformers, the reference CI records), or through the plain-PyTorch Qwen3
of scripts/train_natural (--backend local, for machines without transformers). Tokens come
from HF `tokenizers` when installed, else from `vortex tokenize` (--vortex).
"""
import argparse
import json
import math
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# The attention configurations of the reference: full attention and flows with their budget
# overrides (the same keys as vortex's --topk-ratio / --topk-pages / --sink-pages /
# --recent-pages / --dense-layers).
CONFIGS = [
    {"name": "full"},
    {"name": "streaming", "flow": "flows/streaming.py", "pages": 0, "sink": 1, "recent": 4,
     "dense_layers": [0]},
    {"name": "quest", "flow": "flows/quest.py", "ratio": 0.25, "sink": 1, "recent": 2,
     "dense_layers": [0]},
]


def budget_pages(cfg, n):
    """Step 1 of the selection: the budget B for a row of n pages."""
    if "pages" in cfg:
        b = cfg["pages"]
    else:
        x = cfg["ratio"] * n
        b = round(x) if abs(x - round(x)) < 1e-9 else math.ceil(x)
    b = max(b, cfg.get("floor", 0))
    if "cap" in cfg:
        b = min(b, cfg["cap"])
    return b


def select_pages(cfg, n, scores_fn):
    """Steps 2-5: the selected pages of a row of n pages, ascending. scores_fn(first, count)
    returns one score per scoreable page."""
    b = budget_pages(cfg, n)
    sink, recent = cfg["sink"], max(cfg["recent"], 1)
    reserved = sorted(set(range(min(sink, n))) | set(range(max(0, n - recent), n)))
    if n <= max(b, len(reserved)):
        return list(range(n))
    first, last = min(sink, n), n - recent  # scoreable: first .. last - 1
    count = last - first
    k = max(0, b - len(reserved))
    chosen = []
    if k > 0 and count > 0:
        s = scores_fn(first, count).tolist()
        key = [(-(v if v == v else -math.inf), i) for i, v in enumerate(s)]  # NaN lowest
        chosen = [first + i for _, i in sorted(key)[:k]]
    return sorted(set(reserved) | set(chosen))


def quest_scores(q_group, k_head, page, first, count):
    """Quest: per page the elementwise max and min of its keys; the score is the largest over
    the group's heads of sum_d max(q_d kmax_d, q_d kmin_d)."""
    keys = k_head[first * page:(first + count) * page].view(count, page, -1)
    kmax, kmin = keys.max(dim=1).values, keys.min(dim=1).values  # [N, D]
    bound = torch.maximum(q_group[None] * kmax[:, None], q_group[None] * kmin[:, None])
    return bound.sum(-1).max(-1).values  # [N]


def make_attention(layer, cfg, page, decode_from):
    """Causal attention for every row; with a flow and outside its dense layers, the decode rows
    (positions >= decode_from) attend only to the keys of their selected pages."""
    def attend(q, k, v):  # q [B, H, T, D], k, v [B, Hkv, T, D] -> [B, H, T, D]
        B, H, T, D = q.shape
        hkv = k.shape[1]
        g = H // hkv
        kr, vr = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
        scores = (q.float() @ kr.float().transpose(-1, -2)) / math.sqrt(D)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
        flow = cfg.get("flow")
        if flow and layer not in cfg["dense_layers"]:
            for b in range(B):
                for p in range(decode_from, T):
                    n = (p + page) // page  # pages holding keys 0..p
                    for h in range(hkv):
                        qg = q[b, h * g:(h + 1) * g, p].float()
                        kh = k[b, h, :p + 1].float()
                        fn = (lambda first, count: quest_scores(qg, kh, page, first, count)) \
                            if flow.endswith("quest.py") else \
                            (lambda first, count: torch.zeros(count))
                        keep = torch.zeros(T, dtype=torch.bool)
                        for pg in select_pages(cfg, n, fn):
                            keep[pg * page:min((pg + 1) * page, p + 1)] = True
                        scores[b, h * g:(h + 1) * g, p, ~keep] = float("-inf")
        return (scores.softmax(-1) @ vr.float()).to(q.dtype)
    return attend


# ---- models ------------------------------------------------------------------------------------

class LocalModel:
    def __init__(self, model_dir):
        sys.path.insert(0, os.path.join(HERE, "train_natural"))
        import qwen3
        with open(os.path.join(model_dir, "config.json")) as f:
            c = json.load(f)
        rope = (c.get("rope_parameters") or {}).get("rope_theta", c.get("rope_theta"))
        cfg = {k: c[k] for k in ("vocab_size", "hidden_size", "intermediate_size",
                                 "num_hidden_layers", "num_attention_heads",
                                 "num_key_value_heads", "max_position_embeddings",
                                 "rms_norm_eps")}
        cfg["head_dim"] = c.get("head_dim", c["hidden_size"] // c["num_attention_heads"])
        cfg["rope_theta"] = rope
        if not c.get("tie_word_embeddings", False):
            raise SystemExit("--backend local handles tied embeddings only")
        self.model = qwen3.Qwen3(cfg).eval()
        qwen3.load_weights(self.model, model_dir)
        self.version = f"plain PyTorch {torch.__version__} (scripts/train_natural/qwen3.py)"

    def logprobs(self, ids, cfg, page, decode_from):
        for i, layer in enumerate(self.model.model.layers):
            layer.self_attn.attention = make_attention(i, cfg, page, decode_from)
        with torch.no_grad():
            logits = self.model.logits(self.model(torch.tensor([ids])))
        return logits.float().log_softmax(-1)[0]


class TransformersModel:
    def __init__(self, model_dir):
        import transformers
        self.current = None

        def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                      **kwargs):
            # The selection scores a KV head's whole query group: K and V must come unrepeated.
            if key.shape[1] != module.config.num_key_value_heads:
                raise SystemExit(f"transformers passed {key.shape[1]} key heads, expected the "
                                 f"{module.config.num_key_value_heads} KV heads")
            if scaling is not None and abs(scaling - query.shape[-1] ** -0.5) > 1e-6:
                raise SystemExit(f"attention scaling {scaling} is not 1/sqrt(head_dim)")
            out = self.current[module.layer_idx](query, key, value)
            return out.transpose(1, 2).contiguous(), None
        transformers.AttentionInterface.register("vortex_pages", attention)
        self.model = transformers.Qwen3ForCausalLM.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation="vortex_pages").eval()
        self.version = f"transformers {transformers.__version__}, torch {torch.__version__}"

    def logprobs(self, ids, cfg, page, decode_from):
        n = self.model.config.num_hidden_layers
        self.current = [make_attention(i, cfg, page, decode_from) for i in range(n)]
        with torch.no_grad():
            logits = self.model(torch.tensor([ids])).logits
        return logits.float().log_softmax(-1)[0]


# ---- documents ---------------------------------------------------------------------------------

def encoder(model_dir, vortex):
    try:
        from tokenizers import Tokenizer
        import tokenizers
        tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        return (lambda text: tok.encode(text, add_special_tokens=False).ids,
                f"HF tokenizers {tokenizers.__version__}")
    except ImportError:
        if not vortex:
            raise SystemExit("no HF tokenizers here: pass --vortex to tokenize with vortex")

        def enc(text):
            r = subprocess.run([vortex, "tokenize", "--model", model_dir, "--file", "-",
                                "--no-special", "--json"], input=text, capture_output=True,
                               text=True, check=True)
            return json.loads(r.stdout)["ids"]
        return enc, "vortex tokenize"


def documents(files, encode, context, count):
    stream, gap = [], encode("\n\n")
    for i, path in enumerate(files):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if i:
            stream += gap
        stream += encode(text)
    docs = [stream[a:a + context] for a in range(0, len(stream) - context + 1, context)]
    if len(docs) < count:
        raise SystemExit(f"the text holds {len(stream)} tokens: {len(docs)} documents of "
                         f"{context}, fewer than --documents {count}")
    return docs[:count]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True, help="text file(s), comma-separated")
    ap.add_argument("--out", required=True)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--score-tokens", type=int, default=48)
    ap.add_argument("--documents", type=int, default=3)
    ap.add_argument("--page-size", type=int, default=16)
    ap.add_argument("--backend", choices=["transformers", "local"], default="transformers")
    ap.add_argument("--vortex", default="", help="vortex binary, to tokenize without HF tokenizers")
    args = ap.parse_args()
    encode, tok_version = encoder(args.model, args.vortex)
    files = args.text.split(",")
    docs = documents(files, encode, args.context, args.documents)
    model = TransformersModel(args.model) if args.backend == "transformers" else \
        LocalModel(args.model)
    L, S = args.context, args.score_tokens
    results = []
    for cfg in CONFIGS:
        per_doc = []
        for d in docs:
            # Decode rows: positions L-S .. L-2 (the prefill's last row, L-S-1, is dense).
            lp = model.logprobs(d, cfg, args.page_size, decode_from=L - S)
            per_doc.append([-float(lp[i - 1, d[i]]) for i in range(L - S, L)])
        mean = sum(map(sum, per_doc)) / (len(docs) * S)
        print(f"{cfg['name']}: mean NLL {mean:.6f}", flush=True)
        results.append(dict(cfg, nll=per_doc))
    out = {
        "made_by": "scripts/make_perplexity_reference.py",
        "implementation": model.version, "tokenizer": tok_version,
        "model": os.path.relpath(os.path.abspath(args.model), os.path.dirname(HERE)),
        "text": [os.path.relpath(os.path.abspath(f), os.path.dirname(HERE)) for f in files],
        "context": L, "score_tokens": S, "documents": len(docs), "page_size": args.page_size,
        "document_ids": docs, "configs": results,
    }
    with open(args.out, "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
