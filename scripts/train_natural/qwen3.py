"""Qwen3ForCausalLM's computation in plain PyTorch, with transformers' parameter names, and the
Hugging Face files (config.json, model.safetensors) written and read without transformers.

The natural model is trained with this module so that the training script runs wherever PyTorch
does (a CPU smoke test included) and so that transformers, which reads the saved directory as a
Qwen3 checkpoint, is an independent check of both the files and vortex's forward pass
(scripts/make_perplexity_reference.py).

Blocks: RMSNorm, per-head RMSNorm on q and k, rotary position embeddings (rotate-half layout),
grouped-query attention, SwiGLU MLP, tied input/output embeddings.
"""
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * y.to(x.dtype)


def rope_tables(positions, head_dim, theta):
    """cos and sin [T, head_dim] for the given positions (float32)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim))
    ang = positions.float()[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def causal_attention(q, k, v):
    """q [B, H, T, D], k and v [B, Hkv, T, D]: causal softmax attention, GQA by repeating K/V."""
    rep = q.shape[1] // k.shape[1]
    if rep > 1:
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    if HAS_SDPA:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[2]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
    return scores.masked_fill(mask, float("-inf")).softmax(-1).to(v.dtype) @ v


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = (c["num_attention_heads"],
                                                    c["num_key_value_heads"], c["head_dim"])
        h = c["hidden_size"]
        self.q_proj = nn.Linear(h, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, h, bias=False)
        self.q_norm = RMSNorm(self.head_dim, c["rms_norm_eps"])
        self.k_norm = RMSNorm(self.head_dim, c["rms_norm_eps"])
        # (q [B, H, T, D], k, v [B, Hkv, T, D]) -> [B, H, T, D]; replaceable, e.g. by the
        # page-selecting attention of scripts/make_perplexity_reference.py.
        self.attention = causal_attention

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, t, self.heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(b, t, self.kv_heads, self.head_dim)).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        out = self.attention(q, k, v)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MLP(c)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class Qwen3(nn.Module):
    """`forward(ids)` returns the final-norm hidden states [B, T, hidden]; `logits(hidden)`
    applies the tied output embedding, so a loss can pick the rows it needs first."""

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        self.model = Body(self.config)
        std = self.config.get("initializer_range", 0.02)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=std)

    def forward(self, ids):
        c = self.config
        positions = torch.arange(ids.shape[1], device=ids.device)
        cos, sin = rope_tables(positions, c["head_dim"], c["rope_theta"])
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return self.model.norm(x)

    def logits(self, hidden):
        return hidden @ self.model.embed_tokens.weight.t()

    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())


# ---- Hugging Face files ----------------------------------------------------------------------

def hf_config(c, eos_id, pad_id):
    """config.json as transformers writes it for Qwen3ForCausalLM (both the rope_theta key of
    transformers 4 and the rope_parameters of transformers 5, which each ignore the other)."""
    return {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
        "vocab_size": c["vocab_size"], "hidden_size": c["hidden_size"],
        "intermediate_size": c["intermediate_size"], "num_hidden_layers": c["num_hidden_layers"],
        "num_attention_heads": c["num_attention_heads"],
        "num_key_value_heads": c["num_key_value_heads"], "head_dim": c["head_dim"],
        "hidden_act": "silu", "max_position_embeddings": c["max_position_embeddings"],
        "rms_norm_eps": c["rms_norm_eps"], "rope_theta": c["rope_theta"],
        "rope_parameters": {"rope_type": "default", "rope_theta": c["rope_theta"]},
        "rope_scaling": None, "attention_bias": False, "attention_dropout": 0.0,
        "tie_word_embeddings": True, "use_sliding_window": False, "sliding_window": None,
        "initializer_range": c.get("initializer_range", 0.02), "bos_token_id": None,
        "eos_token_id": eos_id, "pad_token_id": pad_id, "torch_dtype": "bfloat16",
        "dtype": "bfloat16", "use_cache": True,
    }


_DTYPES = {torch.bfloat16: "BF16", torch.float32: "F32", torch.float16: "F16"}
_TORCH = {v: k for k, v in _DTYPES.items()}


def save_safetensors(tensors, path):
    """tensors: name -> tensor. The safetensors layout: an 8-byte little-endian header length,
    a JSON header of dtype, shape and byte offsets per tensor, then the raw bytes. Written to a
    temporary name first, so an interrupted save leaves the previous file."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        dtype = _TORCH[meta["dtype"]]
        buf = torch.frombuffer(bytearray(data[a:b]), dtype=torch.uint8) if b > a else \
            torch.empty(0, dtype=torch.uint8)
        out[name] = buf.view(dtype).reshape(meta["shape"])
    return out


def save_model(model, out_dir, eos_id, pad_id, dtype=torch.bfloat16):
    """config.json, generation_config.json and model.safetensors (tied lm_head not stored)."""
    os.makedirs(out_dir, exist_ok=True)
    state = {k: v.to(dtype) for k, v in model.state_dict().items()}
    save_safetensors(state, os.path.join(out_dir, "model.safetensors"))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config(model.config, eos_id, pad_id), f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": eos_id, "pad_token_id": pad_id, "do_sample": False}, f,
                  indent=1)
    return os.path.getsize(os.path.join(out_dir, "model.safetensors"))


def load_weights(model, model_dir):
    """Loads model.safetensors into the model (float32 master weights); the names and shapes
    must match exactly."""
    state = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    own = model.state_dict()
    if set(state) != set(own):
        missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        raise RuntimeError(f"{model_dir}/model.safetensors: missing {missing[:5]}, "
                           f"unexpected {extra[:5]}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise RuntimeError(f"{model_dir}/model.safetensors: {k} has shape {list(v.shape)}, "
                               f"the config gives {list(own[k].shape)}")
    model.load_state_dict({k: v.float() for k, v in state.items()})
