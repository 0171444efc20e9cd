#!/usr/bin/env python3
"""Makes the test checkpoints and the reference values that Vortex's tests compare against.

Run on a machine with PyTorch, transformers (5.x) and tokenizers (no network needed):

    python3 scripts/make_references.py --out tests/data

It writes
  tokenizers/qwen3/tokenizer_reference.json   ids from HF `tokenizers` for a varied corpus
  tokenizers/qwen3/chat_reference.json        chat templates rendered by transformers
  models/tiny-qwen3/   Qwen3, f32, tied embeddings, one safetensors file, trained BPE tokenizer
  models/tiny-llama/   Llama-3 style, bf16, untied, llama3 RoPE scaling, sharded safetensors
  models/*/reference.json   greedy continuations, per-token logprobs, prompt logprobs (HF, f32)
  models/*/tokenizer_reference.json

Everything is deterministic for a given transformers/tokenizers version; the versions are
recorded in each reference file.
"""
import argparse
import json
import math
import os
import random
import sys
import sysconfig
import tarfile

import tokenizers
import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import processors, trainers

QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
                r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}"
                  r"\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}")


def corpus():
    """Varied text: every case the tokenizer must get right, and some random unicode."""
    cases = [
        "Hello world", "Hello, world!", "hello   world", " leading space", "trailing space ",
        "", " ", "  ", "\n", "\n\n\n", "\t\tindented\n\ttabs", "a\r\nb\rc\n", "   \n   \n",
        "I'm sure you'll see they've done it, isn't it? We'd go. I'M SHOUTING, YOU'RE",
        "Numbers: 0 1 12 123 1234 12345 3.14159 -42 1e-9 1,000,000 2026-11-26",
        "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
        "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot product",
        "<div class=\"x\">&nbsp;</div> {\"key\": [1, 2, {\"nested\": null}]}",
        "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇯🇵",
        "中文分词测试：我们今天去公园散步。", "日本語のテキスト、カタカナとひらがな。",
        "한국어 문장입니다.", "العربية: مرحبا بالعالم", "हिन्दी: नमस्ते दुनिया",
        "Ελληνικά και русский текст", "Combining: e\u0301 a\u0308 n\u0303 (NFC composes these)",
        "Precomposed: é ä ñ Å Å", "Zero\u200bwidth\u200djoiner and \ufeffBOM",
        "Math: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ = ∫ f(x) dx ≈ π",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        "text<|endoftext|>more text<|endoftext|>", "<|im_start|><|im_end|><|im_start|>",
        "not special: <|im_start |> <im_start> <|unknown|>",
        "<think>\nreasoning here\n</think>\n\nanswer", "\\boxed{42} and $x^2$",
        "URL: https://example.com/path?query=1&b=2#frag email@example.org",
        "Mixed:abc123DEF_ghi-jkl.mno", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "!!!???...,,,;;;:::", "    four spaces then text", "tab\there", "x" * 300,
        "The quick brown fox jumps over the lazy dog. " * 20,
    ]
    rng = random.Random(1234)
    pools = [
        (0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x6ff),
        (0x900, 0x97f), (0x3040, 0x30ff), (0x4e00, 0x4fff), (0xac00, 0xad00), (0x1f300, 0x1f64f),
    ]
    for _ in range(60):
        n = rng.randint(1, 40)
        chars = []
        for _ in range(n):
            r = rng.random()
            if r < 0.15:
                chars.append(rng.choice([" ", "  ", "\n", "\t", "'s", "'ll", "0", "42"]))
            else:
                lo, hi = rng.choice(pools)
                chars.append(chr(rng.randint(lo, hi)))
        cases.append("".join(chars))
    return cases


def tokenizer_reference(tok, texts, path):
    out = {"made_by": f"tokenizers {tokenizers.__version__}", "cases": []}
    for t in texts:
        ids = tok.encode(t).ids
        out["cases"].append({"text": t, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)


def training_text():
    """Plain text available offline: the Python standard library's sources and docstrings."""
    lib = sysconfig.get_paths()["stdlib"]
    chunks = []
    total = 0
    for root, _, files in sorted(os.walk(lib)):
        if "test" in root or "site-packages" in root:
            continue
        for name in sorted(files):
            if name.endswith(".py"):
                try:
                    with open(os.path.join(root, name), encoding="utf-8") as f:
                        text = f.read()
                except (UnicodeDecodeError, OSError):
                    continue
                chunks.append(text)
                total += len(text)
                if total > 8_000_000:
                    return chunks + corpus()
    return chunks + corpus()


def train_tokenizer(pattern, specials, vocab_size, bos=None):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(training_text(), trainer=trainer)
    if bos is None:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    else:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])
    return tok


def read_packed_tokenizer(path):
    """The tokenizer.json committed packed as <path>.tar.xz (the archive holds that one file)."""
    with tarfile.open(path + ".tar.xz") as tar:
        return Tokenizer.from_str(tar.extractfile(os.path.basename(path)).read().decode("utf-8"))


def chat_reference(tdir, tok, conversations, versions):
    """Chat templates rendered by transformers' own Jinja engine, to pin ours against."""
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok)
    with open(os.path.join(tdir, "tokenizer_config.json")) as f:
        cfg = json.load(f)
    chat = {"made_by": versions, "cases": []}
    for conv in conversations:
        for agp in (True, False):
            text = fast.apply_chat_template(conv, chat_template=cfg["chat_template"], tokenize=False,
                                            add_generation_prompt=agp,
                                            bos_token=cfg.get("bos_token", ""))
            chat["cases"].append({"messages": conv, "add_generation_prompt": agp, "text": text})
    with open(os.path.join(tdir, "chat_reference.json"), "w", encoding="utf-8") as f:
        json.dump(chat, f, ensure_ascii=False, indent=1)


def greedy_reference(model, prompts, steps):
    """Full-recompute greedy decoding in f32 on the CPU: the plainest possible reference."""
    results = []
    for ids in prompts:
        seq = list(ids)
        out_ids, out_lp, margins = [], [], []
        with torch.no_grad():
            logits = model(torch.tensor([seq])).logits[0].double()
            lp_all = torch.log_softmax(logits, dim=-1)
            prompt_lp = [float(lp_all[i - 1, seq[i]]) for i in range(1, len(seq))]
            for _ in range(steps):
                logits = model(torch.tensor([seq])).logits[0, -1].double()
                lp = torch.log_softmax(logits, dim=-1)
                top2 = torch.topk(logits, 2)
                nxt = int(top2.indices[0])
                margins.append(float(top2.values[0] - top2.values[1]))
                out_ids.append(nxt)
                out_lp.append(float(lp[nxt]))
                seq.append(nxt)
        results.append({"prompt_ids": list(ids), "prompt_logprobs": prompt_lp,
                        "greedy_ids": out_ids, "greedy_logprobs": out_lp,
                        "min_top2_margin": min(margins)})
    return results


def rope_kwargs(params):
    """transformers 5.x takes `rope_parameters`; 4.x takes `rope_theta` and `rope_scaling`."""
    if int(transformers.__version__.split(".")[0]) >= 5:
        return {"rope_parameters": dict(params)}
    rest = {k: v for k, v in params.items() if k != "rope_theta"}
    kw = {"rope_theta": params["rope_theta"]}
    if rest.get("rope_type", "default") != "default":
        kw["rope_scaling"] = rest
    return kw


def make_model(kind, out_dir, tok, seed):
    torch.manual_seed(seed)
    vocab = tok.get_vocab_size()
    if kind == "qwen3":
        cfg = transformers.Qwen3Config(
            vocab_size=vocab, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=4096,
            **rope_kwargs({"rope_type": "default", "rope_theta": 1000000.0}),
            rms_norm_eps=1e-6, tie_word_embeddings=True,
            bos_token_id=tok.token_to_id("<|endoftext|>"), eos_token_id=tok.token_to_id("<|im_end|>"),
            initializer_range=0.08, attn_implementation="eager")
        model = transformers.Qwen3ForCausalLM(cfg)
        save_dtype, shard = torch.float32, None
    else:
        cfg = transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=64, intermediate_size=192, num_hidden_layers=3,
            num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=4096,
            rms_norm_eps=1e-5, tie_word_embeddings=False,
            **rope_kwargs({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                           "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                           "original_max_position_embeddings": 64}),
            bos_token_id=tok.token_to_id("<|begin_of_text|>"),
            eos_token_id=[tok.token_to_id("<|end_of_text|>"), tok.token_to_id("<|eot_id|>")],
            initializer_range=0.08, attn_implementation="eager")
        model = transformers.LlamaForCausalLM(cfg)
        save_dtype, shard = torch.bfloat16, "60KB"
    model.eval()
    # Norm weights away from 1 so that a loader that ignores them fails the comparison.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    os.makedirs(out_dir, exist_ok=True)
    model.to(save_dtype)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(out_dir, **kwargs)
    # The reference runs in f32 on weights exactly as stored (bf16 values upcast).
    model.to(torch.float32)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="tests/data folder to write into")
    args = ap.parse_args()
    torch.set_num_threads(8)
    versions = f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, torch {torch.__version__}"
    texts = corpus()

    qdir = os.path.join(args.out, "tokenizers", "qwen3")
    # The real tokenizer is large, so it is committed packed (see VORTEX_PACKED_TEST_DATA in
    # CMakeLists.txt); the references beside it stay plain.
    qtok = read_packed_tokenizer(os.path.join(qdir, "tokenizer.json"))
    tokenizer_reference(qtok, texts, os.path.join(qdir, "tokenizer_reference.json"))
    with open(os.path.join(qdir, "tokenizer_config.json")) as f:
        qcfg = json.load(f)
    conversations = [
        [{"role": "user", "content": "What is 2+2?"}],
        [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi there"}],
        [{"role": "user", "content": "  padded question \n"}],
        [{"role": "user", "content": "first"}, {"role": "assistant", "content": "reply one"},
         {"role": "user", "content": "second"}],
    ]
    chat_reference(qdir, qtok, conversations, versions)

    specs = {
        "tiny-qwen3": ("qwen3", QWEN_PATTERN, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None,
                       qcfg["chat_template"], "<|endoftext|>", "<|im_end|>"),
        "tiny-llama": ("llama", LLAMA3_PATTERN,
                       ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                        "<|end_header_id|>", "<|eot_id|>"], "<|begin_of_text|>",
                       LLAMA3_CHAT_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>"),
    }
    for name, (kind, pattern, specials, bos, template, bos_tok, eos_tok) in specs.items():
        mdir = os.path.join(args.out, "models", name)
        os.makedirs(mdir, exist_ok=True)
        tok = train_tokenizer(pattern, specials, 1024, bos)
        tok.save(os.path.join(mdir, "tokenizer.json"))
        tok_cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos_tok,
                   "eos_token": eos_tok, "chat_template": template, "model_max_length": 4096}
        with open(os.path.join(mdir, "tokenizer_config.json"), "w") as f:
            json.dump(tok_cfg, f, indent=1)
        tokenizer_reference(tok, texts, os.path.join(mdir, "tokenizer_reference.json"))
        chat_reference(mdir, tok, conversations, versions)

        for seed in range(100):
            model = make_model(kind, mdir, tok, seed)
            rng = random.Random(seed)
            text_prompts = ["def main():\n    print(", "The quick brown fox",
                            "import os\nimport sys\n\nclass"]
            prompts = [tok.encode(t, add_special_tokens=False).ids for t in text_prompts]
            vocab = tok.get_vocab_size()
            prompts += [[rng.randrange(vocab) for _ in range(n)] for n in (1, 7, 16, 33, 150, 300)]
            refs = greedy_reference(model, prompts, 24)
            worst = min(r["min_top2_margin"] for r in refs)
            print(f"{name} seed {seed}: smallest top-2 logit margin {worst:.2e}", flush=True)
            if worst > 2e-3:
                break
        for r, t in zip(refs, text_prompts):
            r["prompt_text"] = t
        with open(os.path.join(mdir, "reference.json"), "w") as f:
            json.dump({"made_by": versions, "model_seed": seed, "dtype_compute": "float32",
                       "cases": refs}, f, indent=0)
        print(f"wrote {mdir}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
