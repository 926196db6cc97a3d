"""Loads what Ostrota exported in PEFT / transformers and records their logits (tests compare with ours).

Usage: python3 tests/goldens/check_exports.py <fixtures_dir> <out.json>
<fixtures_dir>/exports/qwen_adapter: a LoRA adapter Ostrota trained on models/qwen2_tied_bf16_sharded;
<fixtures_dir>/exports/gpt2_full: a GPT-2 Ostrota fully fine-tuned from models/gpt2_f32.
"""
import json
import os
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

fixtures, out_path = sys.argv[1], sys.argv[2]
exports = os.path.join(fixtures, "exports")
ours = json.load(open(os.path.join(exports, "ostrota_logits.json")))
prompt, stride = ours["prompt_ids"], ours["stride"]
ids = torch.tensor([prompt])
result = {"prompt_ids": prompt}


def load(path):
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except TypeError:
        return AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)


with torch.no_grad():
    base = load(os.path.join(fixtures, "models", "qwen2_tied_bf16_sharded"))
    model = PeftModel.from_pretrained(base, os.path.join(exports, "qwen_adapter"))
    model.eval()
    result["qwen_adapter"] = model(ids).logits[0, -1, ::stride].tolist()
    gpt2 = load(os.path.join(exports, "gpt2_full"))
    gpt2.eval()
    result["gpt2_full"] = gpt2(ids).logits[0, -1, ::stride].tolist()
with open(out_path, "w") as f:
    json.dump(result, f)
print("check_exports: qwen adapter and gpt2 full-FT logits recorded", flush=True)
