#!/usr/bin/env python3
"""(cairn copy of ../shared/tools/np_ref.py, extended for qwen2: Q/K/V biases, NeoX RoPE; partial
rotary dims (rope.dimension_count < head dim), linear, YaRN and llama3 RoPE scaling, rope_freqs, attention.key_length; qwen3 (per-head q/k RMSNorm, dense); and a
`llama-full` mode printing the whole last-position logit vector; encoders: nomic-bert (RoPE NeoX,
fused attn_qkv, SwiGLU), pooling mean/CLS/last per <arch>.pooling_type, and the `rank` mode for
cross-encoder heads cls / cls.output.)

Independent numpy reference forward passes (float64) for the staged models, used to cross-check
llama.cpp outputs.  llama: RMSNorm, RoPE (GGUF/llama.cpp "normal" mode: adjacent pairs), GQA, SwiGLU,
optional Mixtral MoE (softmax -> top-k -> renormalise).  bert: post-LN BERT, GELU(tanh approx as
ggml), mean pooling.

usage: np_ref.py llama MODEL.gguf ID,ID,...      -> prints argmax + top5 of last position logits
       np_ref.py llama-full MODEL.gguf ID,ID,... -> prints {"logits": [...]} of the last position
       np_ref.py bert  MODEL.gguf ID,ID,...      -> prints the L2-normalised pooled embedding
                                                    (bert or nomic-bert, pooling per metadata)
       np_ref.py rank  MODEL.gguf ID,ID,...      -> prints {"score": s} of a cross-encoder
"""
import sys, json
import numpy as np
sys.path.insert(0, __file__.rsplit("/", 1)[0])
import ggufio as G


def W(T, n):
    return G.as_f32(*T[n]).astype(np.float64)


def llama_logits(path, ids):
    kv, T = G.load(path)
    a = kv["general.architecture"][1]
    g = lambda k, d=None: kv.get(a + "." + k, (None, d))[1]
    n_layer, n_embd, n_head, n_kv = g("block_count"), g("embedding_length"), g("attention.head_count"), g("attention.head_count_kv")
    eps = g("attention.layer_norm_rms_epsilon")
    base = g("rope.freq_base", 10000.0)
    n_exp, n_used = g("expert_count", 0), g("expert_used_count", 0)
    hd = g("attention.key_length", n_embd // n_head)
    n_rot = g("rope.dimension_count", hd)
    neox = a in ("qwen2", "qwen2moe", "olmoe", "qwen3", "qwen3moe")
    norm_w = a in ("llama", "qwen3moe")      # renormalise the chosen experts' weights (not qwen2moe/olmoe)
    if a == "qwen3moe":                      # qwen3moe: per expert_weights_norm, default on
        norm_w = bool(g("expert_weights_norm", True))
    scale_type = g("rope.scaling.type", "none")
    factor = g("rope.scaling.factor", 0.0) or g("rope.scale_linear", 0.0) or 0.0
    fscale = 1.0 / factor if factor and scale_type not in ("none", "llama3") else 1.0
    n = len(ids)
    x = W(T, "token_embd.weight")[ids]
    rms = lambda v, w: v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w
    inv = base ** (-np.arange(0, n_rot, 2) / n_rot)
    if "rope_freqs.weight" in T:
        inv = inv / W(T, "rope_freqs.weight")
    elif scale_type == "llama3":
        # llama3 (Llama 3.1+): per frequency by wavelength against the original context L:
        # long waves (> L/low) slowed by the factor, short ones (< L/high) kept, a smooth
        # blend of the two between
        f3 = factor or 8.0
        lo, hi = g("rope.scaling.low_freq_factor", 1.0), g("rope.scaling.high_freq_factor", 4.0)
        L = g("rope.scaling.original_context_length", g("context_length"))
        wl = 2 * np.pi / inv
        sm = np.clip((L / wl - lo) / (hi - lo), 0.0, 1.0)
        blended = (1 - sm) * inv / f3 + sm * inv
        inv = np.where(wl < L / hi, inv, np.where(wl > L / lo, inv / f3, blended))
    extrap = np.arange(n)[:, None] * inv[None, :]          # (n, n_rot/2) unscaled angles
    ang = extrap * fscale
    mscale = 1.0
    if scale_type == "yarn" and fscale != 1.0:
        # YaRN: dims that turn fewer than beta_slow..beta_fast times over the original context
        # are interpolated, faster ones extrapolated, with a linear ramp between; magnitude
        # corrected by 1 + 0.1 ln(factor)
        n_orig = g("rope.scaling.original_context_length", g("context_length"))
        corr = lambda beta: n_rot * np.log(n_orig / (beta * 2 * np.pi)) / (2 * np.log(base))
        lo, hi = max(0.0, np.floor(corr(32.0))), min(n_rot - 1.0, np.ceil(corr(1.0)))
        y = (np.arange(n_rot // 2) - lo) / max(0.001, hi - lo)
        ramp = 1 - np.clip(y, 0, 1)
        ang = ang * (1 - ramp) + extrap * ramp
        mscale = 1.0 + 0.1 * np.log(1.0 / fscale)
    cos, sin = np.cos(ang) * mscale, np.sin(ang) * mscale

    def rope(t):  # t: (n, heads, hd); rotate the first n_rot dims: adjacent pairs, or halves (NeoX)
        r = t[..., :n_rot]
        c, s = cos[:, None, :], sin[:, None, :]
        if neox:
            x0, x1 = r[..., :n_rot // 2], r[..., n_rot // 2:]
            rr = np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], -1)
        else:
            t2 = r.reshape(n, t.shape[1], n_rot // 2, 2)
            x0, x1 = t2[..., 0], t2[..., 1]
            rr = np.stack([x0 * c - x1 * s, x0 * s + x1 * c], -1).reshape(r.shape)
        return np.concatenate([rr, t[..., n_rot:]], -1)

    def proj(h, p, nm):
        y = h @ W(T, p + nm + ".weight").T
        if p + nm + ".bias" in T:
            y = y + W(T, p + nm + ".bias")
        return y

    silu = lambda v: v / (1 + np.exp(-v))
    for il in range(n_layer):
        p = "blk.%d." % il
        h = rms(x, W(T, p + "attn_norm.weight"))
        qv, kv_ = proj(h, p, "attn_q"), proj(h, p, "attn_k")
        if a == "olmoe":                         # RMSNorm over the whole q / k vectors
            qv, kv_ = rms(qv, W(T, p + "attn_q_norm.weight")), rms(kv_, W(T, p + "attn_k_norm.weight"))
        qv, kv_ = qv.reshape(n, n_head, hd), kv_.reshape(n, n_kv, hd)
        if a in ("qwen3", "qwen3moe"):           # RMSNorm per head
            qv, kv_ = rms(qv, W(T, p + "attn_q_norm.weight")), rms(kv_, W(T, p + "attn_k_norm.weight"))
        q, k = rope(qv), rope(kv_)
        v = proj(h, p, "attn_v").reshape(n, n_kv, hd)
        rep = n_head // n_kv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        att = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd)
        att = att + np.triu(np.full((n, n), -np.inf), 1)[None]
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = np.einsum("hqk,khd->qhd", att, v).reshape(n, n_head * hd)
        x = x + o @ W(T, p + "attn_output.weight").T
        h = rms(x, W(T, p + "ffn_norm.weight"))
        if n_exp:
            logits = h @ W(T, p + "ffn_gate_inp.weight").T  # (n, n_exp)
            pr = np.exp(logits - logits.max(-1, keepdims=True)); pr /= pr.sum(-1, keepdims=True)
            ge, ue, de = W(T, p + "ffn_gate_exps.weight"), W(T, p + "ffn_up_exps.weight"), W(T, p + "ffn_down_exps.weight")
            out = np.zeros_like(h)
            for t in range(n):
                sel = np.argsort(-pr[t], kind="stable")[:n_used]
                w = pr[t, sel] / pr[t, sel].sum() if norm_w else pr[t, sel]
                for e, we in zip(sel, w):
                    out[t] += we * (de[e] @ (silu(ge[e] @ h[t]) * (ue[e] @ h[t])))
            if p + "ffn_gate_shexp.weight" in T:   # qwen2moe shared expert, sigmoid-gated
                sh = (silu(h @ W(T, p + "ffn_gate_shexp.weight").T) * (h @ W(T, p + "ffn_up_shexp.weight").T)) @ W(T, p + "ffn_down_shexp.weight").T
                gate = 1 / (1 + np.exp(-(h @ W(T, p + "ffn_gate_inp_shexp.weight"))))
                out = out + gate[:, None] * sh
            x = x + out
        else:
            x = x + (silu(h @ W(T, p + "ffn_gate.weight").T) * (h @ W(T, p + "ffn_up.weight").T)) @ W(T, p + "ffn_down.weight").T
    x = rms(x, W(T, "output_norm.weight"))
    outw = W(T, "output.weight") if "output.weight" in T else W(T, "token_embd.weight")
    return x @ outw.T  # (n, n_vocab)


def encoder_hidden(path, ids):
    """Last hidden states (n, d) of a bert or nomic-bert encoder, and its metadata getter."""
    kv, T = G.load(path)
    a = kv["general.architecture"][1]
    g = lambda k, d=None: kv.get(a + "." + k, (None, d))[1]
    d, n_head, eps = g("embedding_length"), g("attention.head_count"), g("attention.layer_norm_epsilon")
    hd = d // n_head
    n = len(ids)
    nomic = a == "nomic-bert"
    opt = lambda nm: W(T, nm) if nm in T else 0.0
    ln = lambda v, w, b: (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + eps) * w + b
    gelu = lambda v: 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v ** 3)))
    silu = lambda v: v / (1 + np.exp(-v))
    x = W(T, "token_embd.weight")[ids]
    if "token_types.weight" in T:
        x = x + W(T, "token_types.weight")[0]           # llama.cpp: every token is sentence A
    if not nomic:
        x = x + W(T, "position_embd.weight")[:n]
    x = ln(x, W(T, "token_embd_norm.weight"), opt("token_embd_norm.bias"))
    if nomic:                                            # NeoX RoPE: pairs (i, i + n_rot/2)
        n_rot = g("rope.dimension_count", hd)
        inv = g("rope.freq_base", 10000.0) ** (-np.arange(0, n_rot, 2) / n_rot)
        ang = np.arange(n)[:, None] * inv[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

        def rope(t):
            r = t[..., :n_rot]
            x0, x1 = r[..., :n_rot // 2], r[..., n_rot // 2:]
            return np.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos, t[..., n_rot:]], -1)
    for il in range(g("block_count")):
        p = "blk.%d." % il
        lin = lambda v, nm: v @ W(T, p + nm + ".weight").T + opt(p + nm + ".bias")
        if nomic:
            qkv = lin(x, "attn_qkv")
            q, k, v = (qkv[:, i * d:(i + 1) * d].reshape(n, n_head, hd) for i in range(3))
            q, k = rope(q), rope(k)
        else:
            q = lin(x, "attn_q").reshape(n, n_head, hd)
            k = lin(x, "attn_k").reshape(n, n_head, hd)
            v = lin(x, "attn_v").reshape(n, n_head, hd)
        att = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd)
        att = np.exp(att - att.max(-1, keepdims=True)); att /= att.sum(-1, keepdims=True)
        o = lin(np.einsum("hqk,khd->qhd", att, v).reshape(n, d), "attn_output")
        x = ln(x + o, W(T, p + "attn_output_norm.weight"), opt(p + "attn_output_norm.bias"))
        if nomic:                                        # SwiGLU, no biases (as llama.cpp)
            f = (silu(x @ W(T, p + "ffn_gate.weight").T) * (x @ W(T, p + "ffn_up.weight").T)) @ W(T, p + "ffn_down.weight").T
        else:
            f = lin(gelu(lin(x, "ffn_up")), "ffn_down")
        x = ln(x + f, W(T, p + "layer_output_norm.weight"), opt(p + "layer_output_norm.bias"))
    return x, g, T


def bert_embed(path, ids):
    """Pooled (mean / CLS / last, per <arch>.pooling_type; rank -> CLS) and L2-normalised."""
    x, g, _ = encoder_hidden(path, ids)
    pt = g("pooling_type", 1)
    e = x[0] if pt in (2, 4) else x[-1] if pt == 3 else x.mean(0)
    return e / np.linalg.norm(e)


def rank_score(path, ids):
    """Cross-encoder score (llama.cpp RANK pooling): CLS -> cls + tanh -> cls.output, output 0."""
    x, g, T = encoder_hidden(path, ids)
    h = x[0]
    if "cls.weight" in T:
        h = np.tanh(h @ W(T, "cls.weight").T + (W(T, "cls.bias") if "cls.bias" in T else 0.0))
    if "cls.output.weight" in T:
        h = h @ W(T, "cls.output.weight").T + (W(T, "cls.output.bias") if "cls.output.bias" in T else 0.0)
    return float(h[0])


if __name__ == "__main__":
    kind, path, ids = sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3].split(",")]
    if kind == "llama-full":
        print(json.dumps({"logits": [float(v) for v in llama_logits(path, ids)[-1]]}))
    elif kind == "llama":
        lg = llama_logits(path, ids)[-1]
        top = np.argsort(-lg)[:5]
        print(json.dumps({"argmax": int(top[0]), "top5": [[int(i), float(lg[i])] for i in top]}))
    elif kind == "rank":
        print(json.dumps({"score": rank_score(path, ids)}))
    else:
        print(json.dumps({"embedding_l2": [float(v) for v in bert_embed(path, ids)]}))
