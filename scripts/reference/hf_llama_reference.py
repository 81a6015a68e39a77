#!/usr/bin/env python3
"""Independent float64 re-implementation of the Hugging Face Llama / Qwen2 forward pass (the math of
transformers' modeling_llama.py / modeling_qwen2.py), used to produce reference logits for Attune's
tests. Dev-machine only (needs Debian's python3-torch); CI uses the committed fixture.

usage: hf_llama_reference.py MODEL_DIR IDS_JSON  -> prints {"logits": [[...], ...]} for one sequence
"""
import json
import math
import struct
import sys

import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        if info["dtype"] == "F32":
            t = torch.frombuffer(bytearray(raw), dtype=torch.float32)
        elif info["dtype"] == "BF16":
            t = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16).float()
        else:
            raise ValueError(info["dtype"])
        out[name] = t.reshape(info["shape"]).double()
    return out, header.get("__metadata__", {})


def rope_inv_freq(cfg, head_dim):
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    rs = cfg.get("rope_scaling")
    if rs and (rs.get("rope_type") or rs.get("type")) == "llama3":
        factor = rs["factor"]
        low, high = rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wl, high_wl = old / low, old / high
        wavelen = 2 * math.pi / inv
        inv_l = torch.where(wavelen > low_wl, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        is_medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
        inv = torch.where(is_medium, smoothed, inv_l)
    return inv


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def forward(model_dir, ids):
    cfg = json.load(open(f"{model_dir}/config.json"))
    w, meta = read_safetensors(f"{model_dir}/model.safetensors")
    d = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim", d // nh)
    eps = cfg.get("rms_norm_eps", 1e-6)
    qwen = cfg["model_type"] == "qwen2"
    attn_bias = qwen or cfg.get("attention_bias", False)
    T = len(ids)
    emb = w.get("model.embed_tokens.weight", w.get(meta.get("model.embed_tokens.weight", ""), None))
    if emb is None:
        emb = w["lm_head.weight"]
    x = emb[torch.tensor(ids)]
    inv = rope_inv_freq(cfg, hd)
    pos = torch.arange(T).float()
    freqs = torch.outer(pos, inv)  # f32 like HF
    e = torch.cat((freqs, freqs), dim=-1)
    cos, sin = e.cos().double(), e.sin().double()
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)

        def lin(name, inp, bias):
            y = inp @ w[p + name + ".weight"].T
            if bias:
                y = y + w[p + name + ".bias"]
            return y

        q = lin("self_attn.q_proj", h, attn_bias).view(T, nh, hd).transpose(0, 1)
        k = lin("self_attn.k_proj", h, attn_bias).view(T, nkv, hd).transpose(0, 1)
        v = lin("self_attn.v_proj", h, attn_bias).view(T, nkv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = nh // nkv
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
        s = q @ k.transpose(1, 2) / math.sqrt(hd) + mask
        a = torch.softmax(s, dim=-1) @ v
        a = a.transpose(0, 1).reshape(T, nh * hd)
        o = lin("self_attn.o_proj", a, (not qwen) and cfg.get("attention_bias", False))
        x = x + o
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        mb = cfg.get("mlp_bias", False)
        g = lin("mlp.gate_proj", h, mb)
        u = lin("mlp.up_proj", h, mb)
        x = x + lin("mlp.down_proj", torch.nn.functional.silu(g) * u, mb)
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["lm_head.weight"] if "lm_head.weight" in w else emb
    return (x @ head.T).tolist()


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    print(json.dumps({"logits": forward(sys.argv[1], json.loads(sys.argv[2]))}))
