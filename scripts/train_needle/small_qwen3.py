"""A minimal Qwen3 decoder in plain PyTorch, for fast CPU experiments on the training recipe.

The computation is scripts/train_natural/qwen3.py's (Qwen3ForCausalLM's blocks: RMSNorm,
per-head RMSNorm on q and k, rotary position embeddings, grouped-query attention, SwiGLU MLP,
tied input/output embeddings); this module only keeps the small constructor and the `head`
name that cpu_recipe_experiment.py uses. No cache, no transformers.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train_natural"))
import qwen3  # noqa: E402


class SmallQwen3(qwen3.Qwen3):
    """`forward` returns the final-norm hidden states and `head` applies the tied output
    embedding (so a loss can pick its rows first)."""

    def __init__(self, vocab, hidden=128, inter=384, layers=4, heads=4, kv_heads=2, head_dim=32,
                 theta=1e6, eps=1e-6, init_std=0.02):
        super().__init__({
            "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": inter,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "head_dim": head_dim, "rope_theta": theta,
            "rms_norm_eps": eps, "initializer_range": init_std,
            "max_position_embeddings": 1 << 15})

    def head(self, hidden):
        return self.logits(hidden)
