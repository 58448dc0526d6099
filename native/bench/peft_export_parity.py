#!/usr/bin/env python3
"""PEFT export parity: a selftune adapter exported with `selftune export --to peft`, loaded
with PEFT on the Hugging Face model, gives the logits llama.cpp gives with the GGUF adapter on
the GGUF conversion of that model (specs/export.md §6, §8). For the GPU machine (torch,
transformers, peft); not part of CI.

Steps (an HF llama or qwen2 model folder HF with config.json, safetensors and tokenizer):

 1. convert it with llama.cpp's converter in the tree (f32, so the GGUF holds HF's values):
      python3 native/bench/peft_export_parity.py convert --hf-dir HF --out /tmp/parity/base.gguf
 2. train a selftune adapter on that GGUF and export it (Bun; the smoke pipeline with the
    loader's `synthesize:` replaced by `model: /tmp/parity/base.gguf`):
      bun run selftune run parity.yaml --run-dir /tmp/parity/run
      bun run selftune export /tmp/parity/run --stage sft --to peft --out /tmp/parity/peft --hf-base HF
 3. compare (builds llama.cpp's CPU libraries from native/deps/llama.cpp once, ~2 min on 16
    cores, into .cache/parity-llama-build, and native/bench/lora_logits.cpp against them):
      python3 native/bench/peft_export_parity.py compare --hf-dir HF --gguf /tmp/parity/base.gguf \\
          --adapter /tmp/parity/run/sft/adapter.gguf --peft /tmp/parity/peft --report /tmp/parity/report.json

What is compared, every position and the whole vocabulary of each text (token ids from the
HF tokenizer, given to both sides as ids, no BOS): HF base vs llama.cpp base (the conversion),
HF+PEFT vs llama.cpp+adapter (the export), and HF+PEFT vs HF base (the adapter's own effect,
which must dwarf the error for the check to mean anything; a few smoke steps move logits
little: --scale multiplies the adapter's scale on both sides, e.g. --scale 20). Both sides
compute in f32: torch with TF32 off (CPU or CUDA), llama.cpp on the CPU with f32 K/V and
flash attention off. Passes when max |Δlogit| with the adapter <= --tol (default 5e-3; logits
of these models span about ±20) and top-1 agreement is 100 %. Exit 0 on pass, 1 on fail.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LLAMA = os.environ.get("LLAMA_CPP_DIR", os.path.join(ROOT, "native", "deps", "llama.cpp"))

TEXTS = [
    "Instruction: Name three primary colors.\nResponse: Red, yellow and blue.\nEND",
    "Instruction: What is 7 times 8?\nResponse: 7 times 8 is 56.\nEND\n\nInstruction: Give a synonym for \"fast\".\nResponse:",
    "Instruction: Write one sentence about the sea.\nResponse: The sea is wide, deep and never quite still.\nEND",
]


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def cmd_convert(a):
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    run([sys.executable, os.path.join(LLAMA, "convert_hf_to_gguf.py"), a.hf_dir, "--outfile", a.out, "--outtype", a.outtype])


def llama_build(a):
    """A CPU-only static llama.cpp (the addon's build may be CUDA), then lora_logits."""
    build = a.llama_build or os.path.join(ROOT, ".cache", "parity-llama-build")
    libs = [os.path.join(build, p) for p in ("src/libllama.a", "ggml/src/libggml.a", "ggml/src/libggml-cpu.a", "ggml/src/libggml-base.a")]
    if not all(os.path.exists(l) for l in libs):
        run(["cmake", "-S", LLAMA, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF",
             "-DGGML_CUDA=OFF", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
             "-DLLAMA_BUILD_TOOLS=OFF", "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_COMMON=OFF",
             "-DLLAMA_OPENSSL=OFF"])
        run(["cmake", "--build", build, "--target", "llama", "-j", str(os.cpu_count() or 4)])
    exe = os.path.join(build, "lora_logits")
    src = os.path.join(ROOT, "native", "bench", "lora_logits.cpp")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        run(["c++", "-std=c++17", "-O2", src, f"-I{LLAMA}/include", f"-I{LLAMA}/ggml/include", *libs, "-fopenmp", "-lpthread", "-ldl", "-o", exe])
    return exe


def llama_logits(exe, gguf, adapter, scale, ids, vocab, scale_dir):
    """Logits (n x vocab) from lora_logits; `adapter` None for the base alone. `vocab` columns
    are kept: HF may pad its embedding rows beyond the tokenizer's vocabulary, or the GGUF's."""
    import numpy as np
    ids_path = os.path.join(scale_dir, "ids.txt")
    out = os.path.join(scale_dir, "logits.f32")
    with open(ids_path, "w") as f:
        f.write(" ".join(str(i) for i in ids))
    run([exe, gguf, adapter or "-", str(scale), ids_path, out])
    logits = np.fromfile(out, dtype="<f4").reshape(len(ids), -1)
    return logits if vocab is None else logits[:, :vocab]


def cmd_compare(a):
    import numpy as np
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    tok = AutoTokenizer.from_pretrained(a.hf_dir)
    model = AutoModelForCausalLM.from_pretrained(a.hf_dir, torch_dtype=torch.float32, attn_implementation="eager").to(device).eval()
    peft = PeftModel.from_pretrained(model, a.peft).to(device).eval()
    if a.scale != 1:
        for m in peft.modules():
            if hasattr(m, "scaling") and isinstance(m.scaling, dict):
                for k in m.scaling:
                    m.scaling[k] *= a.scale
    exe = llama_build(a)
    report = {"hf_dir": a.hf_dir, "gguf": a.gguf, "adapter": a.adapter, "peft": a.peft, "scale": a.scale, "device": device, "tol": a.tol, "texts": []}
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for text in TEXTS:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            x = torch.tensor([ids], device=device)
            with torch.no_grad():
                hf_lora = peft(input_ids=x).logits[0].float().cpu().numpy()
                with peft.disable_adapter():
                    hf_base = peft(input_ids=x).logits[0].float().cpu().numpy()
            ll_base = llama_logits(exe, a.gguf, None, 1.0, ids, None, tmp)
            ll_lora = llama_logits(exe, a.gguf, a.adapter, a.scale, ids, None, tmp)
            vocab = min(hf_base.shape[1], ll_base.shape[1])  # compare the columns both have
            hf_base, hf_lora, ll_base, ll_lora = (m[:, :vocab] for m in (hf_base, hf_lora, ll_base, ll_lora))
            row = {
                "tokens": len(ids),
                "base_max_abs": float(np.abs(hf_base - ll_base).max()),
                "adapter_max_abs": float(np.abs(hf_lora - ll_lora).max()),
                "adapter_effect_max_abs": float(np.abs(hf_lora - hf_base).max()),
                "logit_span": float(np.abs(hf_lora).max()),
                "top1_agreement": float((hf_lora.argmax(1) == ll_lora.argmax(1)).mean()),
            }
            row["pass"] = row["adapter_max_abs"] <= a.tol and row["top1_agreement"] == 1.0
            ok &= row["pass"]
            report["texts"].append(row)
            print(json.dumps(row), flush=True)
    report["pass"] = bool(ok)
    effect = min(r["adapter_effect_max_abs"] for r in report["texts"])
    if effect < 10 * a.tol:
        report["note"] = f"the adapter moves logits by only {effect:.3g}: raise --scale for a check with teeth"
        print(report["note"])
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=2)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="HF folder -> GGUF with llama.cpp's convert_hf_to_gguf.py")
    c.add_argument("--hf-dir", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--outtype", default="f32", choices=["f32", "f16", "bf16"])
    k = sub.add_parser("compare", help="PEFT on HF vs llama.cpp + GGUF adapter")
    k.add_argument("--hf-dir", required=True)
    k.add_argument("--gguf", required=True, help="the conversion of --hf-dir the adapter was trained on")
    k.add_argument("--adapter", required=True, help="the selftune GGUF adapter (run-dir/<stage>/adapter.gguf)")
    k.add_argument("--peft", required=True, help="selftune export --to peft of that adapter")
    k.add_argument("--tol", type=float, default=5e-3)
    k.add_argument("--scale", type=float, default=1.0, help="multiply the adapter's scale on both sides")
    k.add_argument("--device", default=None)
    k.add_argument("--llama-build", default=None, help="a CPU static llama.cpp build dir (default: built into .cache/)")
    k.add_argument("--report", default=None)
    a = p.parse_args()
    sys.exit(cmd_convert(a) if a.cmd == "convert" else cmd_compare(a))


if __name__ == "__main__":
    main()
