#!/usr/bin/env python3
"""Independent float64 re-implementation of the Hugging Face GPT-2 forward pass (the math of
transformers' modeling_gpt2.py: GPT2LMHeadModel with Conv1D weights stored [in, out], fused c_attn,
learned positions, LayerNorm, gelu_new = NewGELUActivation, tied wte), written with numpy only.

(run `npm run format` after regenerating: the fixtures are committed biome-formatted)

usage:
  gpt2_reference.py random OUT_DIR
      writes random GPT-2 checkpoints (config.json + model.safetensors, written here byte by byte,
      in the Hub's names and layouts) to OUT_DIR/<case>/ and their float64 reference logits to
      OUT_DIR/reference.json
  gpt2_reference.py checkpoint MODEL_DIR IDS_JSON NEW_TOKENS
      prints {"logprobs", "entropies", "last_logits_every_1000", "greedy", "margins"} for one
      sequence of a Hub checkpoint: log p and entropy of each next token, every 1000th logit of the
      last position, and NEW_TOKENS greedy ids by full recomputation (with the top-1/top-2 margins)
"""
import json
import math
import os
import struct
import sys

import numpy as np


# ---------------------------------------------------------------- safetensors (F32 only)
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
        if info["dtype"] != "F32":
            raise ValueError(f"{name}: {info['dtype']} (only F32 here)")
        out[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return out


def write_safetensors(path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name], dtype="<f4")
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- the forward (HF's equations)
def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)  # biased, as torch.nn.LayerNorm
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf)


def activation(name, x):
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * np.power(x, 3.0))))
    if name == "gelu":
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    if name == "relu":
        return np.maximum(x, 0)
    if name in ("silu", "swish"):
        return x / (1.0 + np.exp(-x))
    raise ValueError(name)


def forward(cfg, w, ids):
    """Full logits [T, V] of one sequence."""
    p = "transformer." if "transformer.wte.weight" in w else ""
    d = cfg["n_embd"]
    H = cfg["n_head"]
    D = d // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    act = cfg.get("activation_function", "gelu_new")
    T = len(ids)
    h = w[p + "wte.weight"][ids] + w[p + "wpe.weight"][np.arange(T)]
    causal = np.tril(np.ones((T, T), dtype=bool))
    for i in range(cfg["n_layer"]):
        q = f"{p}h.{i}."
        a = layer_norm(h, w[q + "ln_1.weight"], w[q + "ln_1.bias"], eps)
        qkv = a @ w[q + "attn.c_attn.weight"] + w[q + "attn.c_attn.bias"]  # Conv1D: x W + b, W [in, out]
        qq, kk, vv = np.split(qkv, 3, axis=-1)
        qq = qq.reshape(T, H, D).transpose(1, 0, 2)
        kk = kk.reshape(T, H, D).transpose(1, 0, 2)
        vv = vv.reshape(T, H, D).transpose(1, 0, 2)
        s = qq @ kk.transpose(0, 2, 1)
        if cfg.get("scale_attn_weights", True):
            s = s / math.sqrt(D)
        s = np.where(causal, s, np.finfo(np.float64).min)
        s = s - s.max(-1, keepdims=True)
        prob = np.exp(s)
        prob = prob / prob.sum(-1, keepdims=True)
        o = (prob @ vv).transpose(1, 0, 2).reshape(T, d)
        h = h + (o @ w[q + "attn.c_proj.weight"] + w[q + "attn.c_proj.bias"])
        m = layer_norm(h, w[q + "ln_2.weight"], w[q + "ln_2.bias"], eps)
        m = activation(act, m @ w[q + "mlp.c_fc.weight"] + w[q + "mlp.c_fc.bias"])
        h = h + (m @ w[q + "mlp.c_proj.weight"] + w[q + "mlp.c_proj.bias"])
    h = layer_norm(h, w[p + "ln_f.weight"], w[p + "ln_f.bias"], eps)
    head = w["lm_head.weight"] if "lm_head.weight" in w else w[p + "wte.weight"]
    return h @ head.T


# ---------------------------------------------------------------- random checkpoints
CASES = [
    # name, config fields, seed, token ids, options
    ("gpt2-tied", dict(vocab_size=61, n_embd=16, n_head=4, n_layer=2, n_positions=32, n_inner=None), 1,
     [5, 60, 7, 33, 0, 12, 12, 41, 9], {}),
    ("gpt2-untied-inner", dict(vocab_size=53, n_embd=24, n_head=3, n_layer=3, n_positions=20, n_inner=40,
                               tie_word_embeddings=False), 2,
     [52, 1, 17, 44, 3, 3, 29], {"attn_bias_buffers": True}),
    ("gpt2-gelu-unscaled", dict(vocab_size=47, n_embd=12, n_head=2, n_layer=1, n_positions=16, n_inner=20,
                                activation_function="gelu", scale_attn_weights=False,
                                layer_norm_epsilon=1e-3), 3,
     [46, 2, 30, 11, 8, 19], {"base_model_names": True}),
    ("gpt2-head-dim-1", dict(vocab_size=37, n_embd=4, n_head=4, n_layer=2, n_positions=12), 4,
     [1, 2, 3, 36, 5], {}),
]


def config_json(fields):
    cfg = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": fields["vocab_size"] - 1,
        "embd_pdrop": 0.1,
        "eos_token_id": fields["vocab_size"] - 1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": fields["n_positions"],
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "torch_dtype": "float32",
        "use_cache": True,
    }
    cfg.update(fields)
    return cfg


def random_weights(cfg, rng, options):
    d = cfg["n_embd"]
    f = cfg.get("n_inner") or 4 * d
    V = cfg["vocab_size"]
    P = cfg["n_positions"]

    def mat(*shape, std=0.3):
        return rng.standard_normal(shape) * std

    w = {"transformer.wte.weight": mat(V, d, std=0.5), "transformer.wpe.weight": mat(P, d, std=0.5)}
    for i in range(cfg["n_layer"]):
        q = f"transformer.h.{i}."
        w[q + "ln_1.weight"] = 1 + mat(d)
        w[q + "ln_1.bias"] = mat(d)
        w[q + "attn.c_attn.weight"] = mat(d, 3 * d)
        w[q + "attn.c_attn.bias"] = mat(3 * d)
        w[q + "attn.c_proj.weight"] = mat(d, d)
        w[q + "attn.c_proj.bias"] = mat(d)
        w[q + "ln_2.weight"] = 1 + mat(d)
        w[q + "ln_2.bias"] = mat(d)
        w[q + "mlp.c_fc.weight"] = mat(d, f)
        w[q + "mlp.c_fc.bias"] = mat(f)
        w[q + "mlp.c_proj.weight"] = mat(f, d)
        w[q + "mlp.c_proj.bias"] = mat(d)
        if options.get("attn_bias_buffers"):
            # the causal-mask buffer older transformers versions saved (not a parameter)
            w[q + "attn.bias"] = np.tril(np.ones((P, P)))[None, None]
    w["transformer.ln_f.weight"] = 1 + mat(d)
    w["transformer.ln_f.bias"] = mat(d)
    if cfg.get("tie_word_embeddings", True) is False:
        w["lm_head.weight"] = mat(V, d, std=0.5)
    # round to f32 first: the reference runs on exactly the stored values
    w = {k: v.astype(np.float32).astype(np.float64) for k, v in w.items()}
    if options.get("base_model_names"):
        # a checkpoint saved from the bare GPT2Model: no `transformer.` prefix
        w = {k.removeprefix("transformer."): v for k, v in w.items()}
    return w


def make_random(out_dir):
    reference = {}
    for name, fields, seed, ids, options in CASES:
        cfg = config_json(fields)
        w = random_weights(cfg, np.random.default_rng(seed), options)
        case_dir = os.path.join(out_dir, name)
        os.makedirs(case_dir, exist_ok=True)
        with open(os.path.join(case_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        write_safetensors(os.path.join(case_dir, "model.safetensors"), w)
        logits = forward(cfg, w, np.array(ids))
        reference[name] = {"ids": ids, "logits": [[float(f"{v:.10g}") for v in row] for row in logits]}
        print(f"{name}: {logits.shape[0]} x {logits.shape[1]} reference logits", file=sys.stderr)
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(reference, f)
        f.write("\n")


def checkpoint(model_dir, ids, new_tokens):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    logits = forward(cfg, w, np.array(ids))
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    logprobs = [float(logp[t, ids[t + 1]]) for t in range(len(ids) - 1)]
    entropies = [float(-(np.exp(logp[t]) * logp[t]).sum()) for t in range(len(ids) - 1)]
    seq = list(ids)
    greedy = []
    margins = []
    for _ in range(new_tokens):
        last = forward(cfg, w, np.array(seq))[-1]
        order = np.argsort(-last)
        greedy.append(int(order[0]))
        margins.append(float(last[order[0]] - last[order[1]]))
        seq.append(int(order[0]))
    print(json.dumps({"ids": list(ids), "logprobs": logprobs, "entropies": entropies,
                      "last_logits_every_1000": [float(v) for v in logits[-1, ::1000]],
                      "greedy": greedy, "margins": margins}))


if __name__ == "__main__":
    if sys.argv[1] == "random":
        make_random(sys.argv[2])
    elif sys.argv[1] == "checkpoint":
        checkpoint(sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
