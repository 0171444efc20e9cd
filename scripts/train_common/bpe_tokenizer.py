"""The byte-level BPE tokenizer of the small Qwen3 models, in Qwen3's format (its pre-tokenizer
split, byte-level alphabet and special tokens), trained with HF `tokenizers`, and the check that
vortex's token ids equal HF's (what users of the Hugging Face model get)."""
import json
import os

# Qwen2/Qwen3's pre-tokenizer split: digits one by one, words with their leading space.
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
                r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
PAD_TOKEN, EOS_TOKEN = "<|endoftext|>", "<|im_end|>"


def train_bpe(texts, vocab_size):
    """A BPE of vocab_size tokens (the special tokens first) trained on an iterable of texts."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  min_frequency=2, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def write_tokenizer_files(tok, out_dir, max_positions):
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    tok_cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": None,
               "eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN, "model_max_length": max_positions,
               "clean_up_tokenization_spaces": False}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, indent=1)


def check_tokenization(tok, rows):
    """Vortex's ids must be the ids HF `tokenizers` gives (what users of the HF model get)."""
    for r in rows:
        ids = tok.encode(r["prompt"]).ids
        if ids != r["prompt_ids"]:
            raise RuntimeError(f"{r['task']} sample {r['index']}: vortex and HF tokenizers disagree "
                               f"({len(r['prompt_ids'])} vs {len(ids)} prompt tokens)")
