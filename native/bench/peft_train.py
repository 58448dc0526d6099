#!/usr/bin/env python3
"""PyTorch + PEFT side of selftune's training benchmark and loss-curve parity check.

Runs on the GPU machine (Python 3.12, torch, transformers 5.x, peft, numpy); nothing here
is installed with pip, and nothing reaches the network. Three modes:

bench   LoRA training throughput of the peer selftune compares against (bench:train --peer):
        a Qwen2 model of one of the project's preset shapes (native/gguf/synth.ts) with random
        weights, bf16, attn_implementation "sdpa", PEFT LoRA r 16 / alpha 32 / dropout 0 on
        q,k,v,o,gate,up,down, AdamW on the LoRA parameters, random tokens, loss on the second
        half of every sequence (labels -100 on the first half), one optimizer step per batch.

          peft_train.py bench --shape 0.5b|1.5b|7b [--batch 8] [--seq 512] [--steps 10]
                              [--warmup 2] [--lr 2e-4] [--json out.json]

score   teacher-forced scoring throughput in bf16 (forward, log_softmax in f32, gather):
          peft_train.py score --shape 1.5b|7b [--batch 64] [--seq 400] [--steps 5] [--warmup 1]
                              [--cont 0] [--json out.json]
        --cont N scores only the last N positions of each sequence (0: every position).

curve   the loss-curve parity run: the same base weights, the same initial LoRA parameters,
        the same micro-batches in the same order and the same learning rates as our engine;
        writes the per-step loss and gradient norm.
          peft_train.py curve --gguf model.gguf --data data.json --init init.json
                              --out curve.json [--dtype float32|float64|bfloat16]
                              [--device cuda|cpu] [--params-out final.f32]

Figures (bench, score)
  tokens/s   every token of every sequence (scored or not) over the timed steps, between two
             torch.cuda.synchronize() calls; warm-up steps are not timed.
  peak GiB   torch.cuda.max_memory_allocated() / 2**30 with the statistics reset after the
             model is built (weights included, the building itself not).
  MFU        tokens/s * k * N / 989e12, where N = the parameters of every matrix multiply a
             token goes through (all linear layers of all blocks plus the output projection;
             the input embedding is a lookup and is not counted), k = 4 for LoRA training
             (forward 2N + backward through frozen weights to the activations 2N; frozen
             weights get no weight gradient) and k = 2 for scoring (forward only), 989e12 =
             the dense bf16 peak of an H100/H200 SXM. Attention score FLOPs and the LoRA
             matmuls are not counted. bench:train computes ours with the same N.

Formats read by curve (written by native/bench/train_parity.ts)

  data.json
    {
      "format": "selftune.train-parity.data.v1",
      "pad_id": 0,                       # id that right-pads shorter rows of a micro-batch
      "optimizer": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                    "weight_decay": 0.0, "max_grad_norm": 1.0},   # 0 = no clipping
      "lr": [lr_0, lr_1, ...],           # the learning rate of each step, already scheduled
      "steps": [                         # optimizer steps in training order
        [                                # the micro-batches of one step, in order
          {"tokens":    [[id, ...], ...],    # one row per sequence; rows may differ in length
           "loss_mask": [[0, 1, ...], ...]}  # same shape; 1 at j: token j is a target,
        ]                                    # predicted from position j-1 (j = 0 is never one)
      ]
    }
    Step k's loss is sum(-log p(target)) over all its micro-batches divided by the number
    of targets of the whole step; its gradient accumulates over the micro-batches, is
    clipped by global norm (torch's clip_grad_norm_), then AdamW steps with lr[k].
    Positions restart at 0 in every row; rows are right-padded with pad_id (causal
    attention: padding at the end never reaches a real position, and is never a target).

  init.json
    {
      "format": "selftune.train-parity.init.v1",
      "rank": 16, "alpha": 32.0,         # LoRA scale = alpha / rank
      "targets": ["q", "k", "v", "o", "gate", "up", "down"],
      "n_params": 1234,                  # float32 count of the params file
      "params_file": "init.f32",         # raw little-endian float32, relative to init.json
      "slots": [                         # one per (layer, target) carrying LoRA
        {"layer": 0, "target": "q", "tensor": "blk.0.attn_q.weight",
         "n_in": 896, "n_out": 896, "a_offset": 0, "b_offset": 14336}
      ]
    }
    A slot's A is rank x n_in row-major at a_offset (= PEFT lora_A.weight, shape (r, n_in));
    its B is n_out x rank row-major at b_offset (= PEFT lora_B.weight, shape (n_out, r)).
    This is our engine's flat parameter layout (session.getParams()), which is also
    llama.cpp's adapter layout. "params": [...] inline may replace "params_file".

  curve.json (written)
    {"format": "selftune.train-parity.curve.v1", "dtype", "device", "torch", "transformers",
     "peft", "seconds",
     "steps": [{"step": k, "loss": mean target NLL, "grad_norm": global norm before clipping,
                "lr": lr, "targets": n, "tokens": unpadded tokens}]}
    --params-out writes the LoRA parameters after the last step in the init layout.

--dtype float64 is a sharper reference for our f32 engine, though HF still computes RMSNorm
and the RoPE angles in float32 there.

The GGUF (curve) must be a qwen2 model with f32/f16/bf16 weights as the project's
synthesizer writes them; other ggml types are dequantized with gguf-py's numpy code.
gguf-py comes from the llama.cpp tree: $LLAMA_CPP_DIR/gguf-py, else native/deps/llama.cpp.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# native/gguf/synth.ts presets (Qwen2.5 shapes). Kept in sync by hand: synth.ts is the
# source of truth; bench:train --peer passes only the preset name.
PRESETS = {
    "tiny": dict(hidden=64, layers=2, heads=4, kv_heads=2, ffn=128, tied=True),
    "0.5b": dict(hidden=896, layers=24, heads=14, kv_heads=2, ffn=4864, tied=True),
    "1.5b": dict(hidden=1536, layers=28, heads=12, kv_heads=2, ffn=8960, tied=True),
    "7b": dict(hidden=3584, layers=28, heads=28, kv_heads=4, ffn=18944, tied=False),
}
VOCAB = 151936
ROPE_THETA = 1e6
RMS_EPS = 1e-6
PEAK_FLOPS = 989e12

TARGET_MODULES = {
    "q": ("self_attn", "q_proj"),
    "k": ("self_attn", "k_proj"),
    "v": ("self_attn", "v_proj"),
    "o": ("self_attn", "o_proj"),
    "gate": ("mlp", "gate_proj"),
    "up": ("mlp", "up_proj"),
    "down": ("mlp", "down_proj"),
}
TARGET_ORDER = ["q", "k", "v", "o", "gate", "up", "down"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- model construction ------------------------------------------------------------------


def qwen2_config(*, hidden, layers, heads, kv_heads, ffn, tied, vocab=VOCAB, rope_theta=ROPE_THETA,
                 rms_eps=RMS_EPS, context=32768):
    import transformers
    from transformers import Qwen2Config

    # transformers 5 keeps the RoPE base under rope_parameters; 4.x reads rope_theta.
    # check_rope() confirms it arrived either way.
    major = int(transformers.__version__.split(".")[0])
    rope = ({"rope_parameters": {"rope_type": "default", "rope_theta": rope_theta}} if major >= 5
            else {"rope_theta": rope_theta})
    cfg = Qwen2Config(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=context,
        rms_norm_eps=rms_eps,
        tie_word_embeddings=tied,
        use_sliding_window=False,
        use_cache=False,
        hidden_act="silu",
        attention_dropout=0.0,
        attn_implementation="sdpa",
        **rope,
    )
    return cfg


def check_rope(model, theta: float, head_dim: int) -> None:
    """A config key renamed between transformers versions would silently give base 10000."""
    import torch

    inv = getattr(getattr(model.model, "rotary_emb", None), "inv_freq", None)
    if inv is None:
        return
    expect = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    got = inv.detach().double().cpu()
    # Loose enough for a buffer kept in bf16; a wrong base (10000 vs 1e6) is off by 15%.
    rtol = 1e-2 if inv.dtype in (torch.bfloat16, torch.float16) else 1e-5
    if got.shape != expect.shape or not torch.allclose(got, expect, rtol=rtol, atol=0):
        raise SystemExit(f"RoPE base did not reach the model: inv_freq[1] {got[1].item():.6g}, expected {expect[1].item():.6g}")


def build_model(cfg, dtype, device):
    import torch
    from transformers import Qwen2ForCausalLM

    prev = torch.get_default_dtype()
    # Built directly in the target dtype on the device: a 7b model in f32 on the host
    # would take minutes to initialise.
    try:
        torch.set_default_dtype(dtype)
        direct = True
    except (TypeError, RuntimeError):
        direct = False
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(cfg)
    finally:
        torch.set_default_dtype(prev)
    if not direct:
        model = model.to(dtype)
    impl = getattr(model.config, "_attn_implementation", None)
    if impl is not None and impl != "sdpa":
        raise SystemExit(f"attention implementation is {impl!r}, not sdpa")
    return model


def matmul_params(cfg) -> int:
    d, f = cfg.hidden_size, cfg.intermediate_size
    hd = d // cfg.num_attention_heads
    q, kv = hd * cfg.num_attention_heads, hd * cfg.num_key_value_heads
    per_layer = d * q + 2 * d * kv + q * d + 3 * d * f
    return cfg.num_hidden_layers * per_layer + cfg.vocab_size * d


def apply_lora(model, rank, alpha, targets):
    from peft import LoraConfig, get_peft_model

    lc = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=[TARGET_MODULES[t][1] for t in targets],
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lc)


def versions() -> dict:
    import torch
    import transformers
    import peft

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def device_name(device) -> str:
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


def sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


# ---- bench ---------------------------------------------------------------------------------


def cmd_bench(a) -> dict:
    import torch

    shape = PRESETS[a.shape]
    device = "cuda"
    if not torch.cuda.is_available():
        raise SystemExit("bench needs a CUDA device")
    torch.manual_seed(a.seed)
    cfg = qwen2_config(**shape)
    model = build_model(cfg, torch.bfloat16, device)
    check_rope(model, ROPE_THETA, shape["hidden"] // shape["heads"])
    n_base = sum(p.numel() for p in model.parameters())
    n_mm = matmul_params(cfg)
    model = apply_lora(model, 16, 32, TARGET_ORDER)
    lora = [p for p in model.parameters() if p.requires_grad]
    n_lora = sum(p.numel() for p in lora)
    opt = torch.optim.AdamW(lora, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    model.train()

    gen = torch.Generator(device=device).manual_seed(a.seed + 1)
    half = a.seq // 2

    def step():
        ids = torch.randint(0, VOCAB, (a.batch, a.seq), device=device, generator=gen)
        labels = ids.clone()
        labels[:, :half] = -100
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

    torch.cuda.reset_peak_memory_stats()
    for _ in range(a.warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    losses = [step() for _ in range(a.steps)]
    sync(device)
    seconds = time.perf_counter() - t0
    tokens = a.steps * a.batch * a.seq
    tps = tokens / seconds
    peak = torch.cuda.max_memory_allocated() / 2**30
    row = {
        "mode": "bench",
        "shape": a.shape,
        "batch": a.batch,
        "seq": a.seq,
        "steps": a.steps,
        "warmup": a.warmup,
        "dtype": "bfloat16",
        "attn": "sdpa",
        "lora": {"rank": 16, "alpha": 32, "dropout": 0.0, "targets": TARGET_ORDER, "parameters": n_lora},
        "baseParameters": n_base,
        "matmulParameters": n_mm,
        "tokens": tokens,
        "seconds": seconds,
        "tokensPerSecond": tps,
        "secondsPerStep": seconds / a.steps,
        "peakGiB": peak,
        "mfu": tps * 4 * n_mm / PEAK_FLOPS,
        "mfuFormula": "tokens/s * 4 * matmulParameters / 989e12",
        "lastLoss": float(losses[-1].item()) if losses else None,
        "device": device_name(device),
        **versions(),
    }
    log(f"peft {a.shape} {a.batch}x{a.seq}: {tps:,.0f} tokens/s, {seconds / a.steps:.3f} s/step, "
        f"peak {peak:.1f} GiB, MFU {row['mfu'] * 100:.1f}%")
    return row


# ---- score ---------------------------------------------------------------------------------


def cmd_score(a) -> dict:
    import torch

    shape = PRESETS[a.shape]
    device = "cuda"
    if not torch.cuda.is_available():
        raise SystemExit("score needs a CUDA device")
    torch.manual_seed(a.seed)
    cfg = qwen2_config(**shape)
    model = build_model(cfg, torch.bfloat16, device)
    check_rope(model, ROPE_THETA, shape["hidden"] // shape["heads"])
    model.eval()
    n_mm = matmul_params(cfg)
    gen = torch.Generator(device=device).manual_seed(a.seed + 1)
    cont = a.cont if a.cont > 0 else a.seq - 1
    chunk = 16

    def step():
        ids = torch.randint(0, VOCAB, (a.batch, a.seq), device=device, generator=gen)
        total = torch.zeros((), dtype=torch.float64, device=device)
        with torch.inference_mode():
            logits = model(input_ids=ids, use_cache=False).logits
            # Position j-1 predicts token j; a 150k-vocabulary f32 log-softmax of the whole
            # batch at once would double the logits' memory, so a few rows at a time.
            for b in range(0, a.batch, chunk):
                lg = logits[b:b + chunk, a.seq - 1 - cont:a.seq - 1].float()
                lp = torch.log_softmax(lg, dim=-1)
                tgt = ids[b:b + chunk, a.seq - cont:].unsqueeze(-1)
                total += lp.gather(-1, tgt).sum(dtype=torch.float64)
        return total

    torch.cuda.reset_peak_memory_stats()
    for _ in range(a.warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync(device)
    seconds = time.perf_counter() - t0
    tokens = a.steps * a.batch * a.seq
    tps = tokens / seconds
    row = {
        "mode": "score",
        "shape": a.shape,
        "batch": a.batch,
        "seq": a.seq,
        "scoredPositions": cont,
        "steps": a.steps,
        "dtype": "bfloat16",
        "attn": "sdpa",
        "matmulParameters": n_mm,
        "tokens": tokens,
        "seconds": seconds,
        "tokensPerSecond": tps,
        "peakGiB": torch.cuda.max_memory_allocated() / 2**30,
        "mfu": tps * 2 * n_mm / PEAK_FLOPS,
        "mfuFormula": "tokens/s * 2 * matmulParameters / 989e12",
        "device": device_name(device),
        **versions(),
    }
    log(f"score {a.shape} {a.batch}x{a.seq} ({cont} scored): {tps:,.0f} tokens/s, peak {row['peakGiB']:.1f} GiB")
    return row


# ---- curve ---------------------------------------------------------------------------------


def import_gguf():
    here = Path(__file__).resolve().parent
    candidates = []
    if os.environ.get("LLAMA_CPP_DIR"):
        candidates.append(Path(os.environ["LLAMA_CPP_DIR"]) / "gguf-py")
    candidates.append(here.parent / "deps" / "llama.cpp" / "gguf-py")
    for c in candidates:
        if (c / "gguf" / "__init__.py").exists():
            sys.path.insert(0, str(c))
            break
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise SystemExit(f"gguf-py not found; looked in {', '.join(map(str, candidates))} (set LLAMA_CPP_DIR)")
    return gguf


def gguf_meta(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def tensor_f32(gguf, t):
    """A GGUF tensor as float32 numpy in torch's layout: ne [n_in, n_out] -> (n_out, n_in)."""
    import numpy as np

    Q = gguf.GGMLQuantizationType
    dims = tuple(int(d) for d in reversed(t.shape.tolist()))
    if t.tensor_type == Q.F32:
        arr = np.asarray(t.data, dtype=np.float32)
    elif t.tensor_type == Q.F16:
        arr = np.asarray(t.data).astype(np.float32)
    else:
        arr = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
    return arr.reshape(dims)


def load_gguf_model(path, dtype, device):
    import torch

    gguf = import_gguf()
    r = gguf.GGUFReader(path)
    arch = gguf_meta(r, "general.architecture")
    if arch != "qwen2":
        # llama GGUFs carry q/k permuted for ggml's adjacent-pair RoPE; only qwen2 maps 1:1.
        raise SystemExit(f"{path}: architecture {arch!r}; curve handles qwen2 only")
    tensors = {t.name: t for t in r.tensors}
    hidden = int(gguf_meta(r, "qwen2.embedding_length"))
    heads = int(gguf_meta(r, "qwen2.attention.head_count"))
    rope_dim = gguf_meta(r, "qwen2.rope.dimension_count")
    if rope_dim is not None and int(rope_dim) != hidden // heads:
        raise SystemExit(f"{path}: partial RoPE ({rope_dim} of {hidden // heads}) is not supported")
    for k in ("qwen2.rope.scaling.type", "qwen2.attention.scale"):
        if gguf_meta(r, k) is not None:
            raise SystemExit(f"{path}: {k} is set; not supported")
    theta = float(gguf_meta(r, "qwen2.rope.freq_base", 10000.0))
    eps = float(gguf_meta(r, "qwen2.attention.layer_norm_rms_epsilon"))
    tied = "output.weight" not in tensors
    shape = dict(
        hidden=hidden,
        layers=int(gguf_meta(r, "qwen2.block_count")),
        heads=heads,
        kv_heads=int(gguf_meta(r, "qwen2.attention.head_count_kv", heads)),
        ffn=int(gguf_meta(r, "qwen2.feed_forward_length")),
        tied=tied,
    )
    vocab = int(tensors["token_embd.weight"].shape[1])
    cfg = qwen2_config(**shape, vocab=vocab, rope_theta=theta, rms_eps=eps,
                       context=int(gguf_meta(r, "qwen2.context_length", 32768)))

    # Built in f32 and filled from the file; rounding to bf16 (if asked) happens once after.
    model = build_model(cfg, torch.float32, device)
    check_rope(model, theta, hidden // heads)
    names = {
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    }
    per_layer = {
        "attn_norm.weight": "input_layernorm.weight",
        "attn_q.weight": "self_attn.q_proj.weight",
        "attn_k.weight": "self_attn.k_proj.weight",
        "attn_v.weight": "self_attn.v_proj.weight",
        "attn_q.bias": "self_attn.q_proj.bias",
        "attn_k.bias": "self_attn.k_proj.bias",
        "attn_v.bias": "self_attn.v_proj.bias",
        "attn_output.weight": "self_attn.o_proj.weight",
        "ffn_norm.weight": "post_attention_layernorm.weight",
        "ffn_gate.weight": "mlp.gate_proj.weight",
        "ffn_up.weight": "mlp.up_proj.weight",
        "ffn_down.weight": "mlp.down_proj.weight",
    }
    for l in range(shape["layers"]):
        for k, v in per_layer.items():
            names[f"blk.{l}.{k}"] = f"model.layers.{l}.{v}"
    params = dict(model.named_parameters())
    filled = set()
    with torch.no_grad():
        for name, t in tensors.items():
            if name not in names:
                raise SystemExit(f"{path}: tensor {name} has no place in a Qwen2 model")
            p = params[names[name]]
            arr = tensor_f32(gguf, t)
            if tuple(arr.shape) != tuple(p.shape):
                raise SystemExit(f"{name}: file shape {arr.shape} vs model {tuple(p.shape)}")
            p.copy_(torch.from_numpy(arr))
            filled.add(names[name])
    # A tied lm_head is the same tensor as embed_tokens; nothing else may stay random.
    missing = [n for n in params if n not in filled and not (tied and n == "lm_head.weight")]
    if missing:
        raise SystemExit(f"{path}: no tensor for {', '.join(missing[:5])}")
    if tied and model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        model.tie_weights()
        if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
            raise SystemExit("tied output is not tied in the HF model")
    if dtype != torch.float32:
        model = model.to(dtype)
    meta = {"architecture": arch, "ropeBase": theta, "rmsEpsilon": eps, "tied": tied, "vocab": vocab, **shape,
            "weightTypes": sorted({t.tensor_type.name for t in tensors.values()})}
    return model, meta


def load_init(path):
    import numpy as np

    init = json.loads(Path(path).read_text())
    if init.get("format") != "selftune.train-parity.init.v1":
        raise SystemExit(f"{path}: format {init.get('format')!r}, expected selftune.train-parity.init.v1")
    if "params" in init:
        flat = np.asarray(init["params"], dtype=np.float32)
    else:
        flat = np.fromfile(Path(path).parent / init["params_file"], dtype="<f4")
    if flat.size != int(init["n_params"]):
        raise SystemExit(f"{path}: {flat.size} parameters, n_params says {init['n_params']}")
    return init, flat


def lora_modules(peft_model, init):
    """(slot, lora_A weight, lora_B weight) in the init file's slot order."""
    hf = peft_model.get_base_model()
    out = []
    for s in init["slots"]:
        block, proj = TARGET_MODULES[s["target"]]
        mod = getattr(getattr(hf.model.layers[s["layer"]], block), proj)
        A = mod.lora_A["default"].weight
        B = mod.lora_B["default"].weight
        r = int(init["rank"])
        if tuple(A.shape) != (r, s["n_in"]) or tuple(B.shape) != (s["n_out"], r):
            raise SystemExit(f"slot {s['tensor']}: PEFT A {tuple(A.shape)} B {tuple(B.shape)}, "
                             f"file A ({r}, {s['n_in']}) B ({s['n_out']}, {r})")
        scaling = mod.scaling["default"]
        if abs(scaling - float(init["alpha"]) / r) > 1e-6 * abs(scaling):
            raise SystemExit(f"PEFT scaling {scaling} != alpha/rank {float(init['alpha']) / r}")
        out.append((s, A, B))
    return out


def cmd_curve(a) -> dict:
    import numpy as np
    import torch

    dtypes = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
    dtype = dtypes[a.dtype]
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    # Parity in f32 means f32: TF32 matmuls would round inputs to 10 mantissa bits.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.manual_seed(0)

    data = json.loads(Path(a.data).read_text())
    if data.get("format") != "selftune.train-parity.data.v1":
        raise SystemExit(f"{a.data}: format {data.get('format')!r}, expected selftune.train-parity.data.v1")
    init, flat = load_init(a.init)
    steps, lrs, opt_cfg = data["steps"], data["lr"], data["optimizer"]
    if len(lrs) != len(steps):
        raise SystemExit(f"{a.data}: {len(steps)} steps but {len(lrs)} learning rates")
    pad_id = int(data.get("pad_id", 0))

    model, meta = load_gguf_model(a.gguf, dtype, device)
    for t in init["targets"]:
        if t not in TARGET_MODULES:
            raise SystemExit(f"unknown LoRA target {t!r}")
    model = apply_lora(model, int(init["rank"]), float(init["alpha"]), init["targets"])
    slots = lora_modules(model, init)
    r = int(init["rank"])
    with torch.no_grad():
        for s, A, B in slots:
            a_vals = flat[s["a_offset"]:s["a_offset"] + r * s["n_in"]].reshape(r, s["n_in"])
            b_vals = flat[s["b_offset"]:s["b_offset"] + s["n_out"] * r].reshape(s["n_out"], r)
            A.copy_(torch.from_numpy(np.ascontiguousarray(a_vals)))
            B.copy_(torch.from_numpy(np.ascontiguousarray(b_vals)))
    lora_params = [p for _, A, B in slots for p in (A, B)]
    trainable = [p for p in model.parameters() if p.requires_grad]
    if len(trainable) != len(lora_params) or {id(p) for p in trainable} != {id(p) for p in lora_params}:
        raise SystemExit(f"{len(trainable)} trainable tensors, {len(lora_params)} LoRA tensors from init.json")
    # PEFT keeps adapters in f32 over a bf16 base (autocast_adapter_dtype); in f64 runs
    # they must follow the base, or the reference would be f32 again.
    if dtype == torch.float64:
        for p in lora_params:
            p.data = p.data.double()
    opt = torch.optim.AdamW(
        lora_params,
        lr=float(lrs[0]) if lrs else 0.0,
        betas=(float(opt_cfg["beta1"]), float(opt_cfg["beta2"])),
        eps=float(opt_cfg["eps"]),
        weight_decay=float(opt_cfg["weight_decay"]),
        foreach=False,
    )
    max_norm = float(opt_cfg.get("max_grad_norm", 0.0))
    hf = model.get_base_model()
    model.train()

    records = []
    t0 = time.perf_counter()
    for k, micro in enumerate(steps):
        n_targets = 0
        n_tokens = 0
        for mb in micro:
            for row, mask in zip(mb["tokens"], mb["loss_mask"]):
                if len(row) != len(mask):
                    raise SystemExit(f"step {k}: a row of {len(row)} tokens has a mask of {len(mask)}")
                if mask and mask[0]:
                    raise SystemExit(f"step {k}: token 0 of a row is marked as a target; nothing predicts it")
                n_targets += sum(1 for m in mask if m)
                n_tokens += len(row)
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for mb in micro:
            width = max(len(row) for row in mb["tokens"])
            ids = torch.full((len(mb["tokens"]), width), pad_id, dtype=torch.long)
            msk = torch.zeros((len(mb["tokens"]), width), dtype=torch.bool)
            for i, (row, mask) in enumerate(zip(mb["tokens"], mb["loss_mask"])):
                ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
                msk[i, :len(mask)] = torch.tensor(mask, dtype=torch.bool)
            ids, msk = ids.to(device), msk.to(device)
            sel = msk[:, 1:]
            if not bool(sel.any()):
                continue
            # No attention mask: right padding under a causal mask never reaches a real
            # position, so this equals running every row alone (as our engine does).
            h = hf.model(input_ids=ids, use_cache=False).last_hidden_state
            rows = h[:, :-1][sel]
            # Logits only for scored rows, in f32 (a 150k vocabulary x every row would not fit).
            logits = hf.lm_head(rows)
            logits = logits.float() if logits.dtype == torch.bfloat16 else logits
            nll = torch.nn.functional.cross_entropy(logits, ids[:, 1:][sel], reduction="sum")
            (nll / n_targets).backward()
            loss_sum += float(nll.item())
        if max_norm > 0:
            gnorm = torch.nn.utils.clip_grad_norm_(lora_params, max_norm, foreach=False)
        else:
            gnorm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in lora_params]))
        for g in opt.param_groups:
            g["lr"] = float(lrs[k])
        opt.step()
        rec = {
            "step": k,
            "loss": loss_sum / n_targets if n_targets else float("nan"),
            "grad_norm": float(gnorm.item()),
            "lr": float(lrs[k]),
            "targets": n_targets,
            "tokens": n_tokens,
        }
        records.append(rec)
        if a.verbose:
            log(f"step {k:3d}  loss {rec['loss']:.6f}  |g| {rec['grad_norm']:.6f}  lr {rec['lr']:.3e}")
    sync(device)
    seconds = time.perf_counter() - t0

    if a.params_out:
        final = np.zeros_like(flat)
        for s, A, B in slots:
            final[s["a_offset"]:s["a_offset"] + r * s["n_in"]] = A.detach().float().cpu().numpy().reshape(-1)
            final[s["b_offset"]:s["b_offset"] + s["n_out"] * r] = B.detach().float().cpu().numpy().reshape(-1)
        final.astype("<f4").tofile(a.params_out)

    result = {
        "format": "selftune.train-parity.curve.v1",
        "gguf": str(a.gguf),
        "model": meta,
        "dtype": a.dtype,
        "device": device_name(device),
        "seconds": seconds,
        **versions(),
        "steps": records,
    }
    return result


# ---- entry ---------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)

    b = sub.add_parser("bench", help="PEFT LoRA training throughput")
    b.add_argument("--shape", choices=list(PRESETS), required=True)
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--seq", type=int, default=512)
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--lr", type=float, default=2e-4)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json")

    s = sub.add_parser("score", help="teacher-forced scoring throughput")
    s.add_argument("--shape", choices=list(PRESETS), required=True)
    s.add_argument("--batch", type=int, default=64)
    s.add_argument("--seq", type=int, default=400)
    s.add_argument("--steps", type=int, default=5)
    s.add_argument("--warmup", type=int, default=1)
    s.add_argument("--cont", type=int, default=0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json")

    c = sub.add_parser("curve", help="loss-curve parity run")
    c.add_argument("--gguf", required=True)
    c.add_argument("--data", required=True)
    c.add_argument("--init", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--dtype", choices=["float32", "float64", "bfloat16"], default="float32")
    c.add_argument("--device")
    c.add_argument("--params-out")
    c.add_argument("--verbose", action="store_true")

    a = p.parse_args(argv)
    if a.mode in ("bench", "score"):
        if a.batch < 1 or a.seq < 2 or a.steps < 1 or a.warmup < 0:
            p.error("batch >= 1, seq >= 2, steps >= 1, warmup >= 0")
        if a.mode == "score" and not 0 <= a.cont < a.seq:
            p.error("--cont must be in [0, seq)")
        row = cmd_bench(a) if a.mode == "bench" else cmd_score(a)
        text = json.dumps(row, indent=2)
        if a.json:
            Path(a.json).write_text(text + "\n")
        print(text)
        return 0
    res = cmd_curve(a)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    last = res["steps"][-1] if res["steps"] else None
    log(f"curve: {len(res['steps'])} steps in {res['seconds']:.1f} s on {res['device']} ({a.dtype})"
        + (f", last loss {last['loss']:.6f}" if last else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
