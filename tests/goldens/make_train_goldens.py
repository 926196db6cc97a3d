"""Training goldens from transformers + PEFT (float32, CPU, seeded).

Usage: python3 tests/goldens/make_train_goldens.py <models_dir> <qwen_tokenizer_dir> <out_dir>

<models_dir> is make_model_goldens.py's output (it holds qwen2_tied_bf16_sharded). Writes into <out_dir>:
  batch.json                 the fixed batch: chat messages, input_ids, labels (replies only), attention_mask
  lora_init/                 the PEFT adapter before training (r=4, alpha=8, all 7 projections, B non-zero)
  lora_grads.safetensors     d loss / d lora_A, lora_B after one forward/backward (PEFT key names)
  lora_step3/                the adapter after three torch.optim.AdamW steps on the batch
  train_goldens.json         loss before training, the loss at each of the three steps, hyperparameters
The lead copies <out_dir> to tests/fixtures/train/.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_goldens import chat_text, load_tokenizer  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
CONVERSATIONS = [
    [
        {"role": "user", "content": "Доктор, я всё забываю!"},
        {"role": "assistant", "content": "С какого времени?"},
    ],
    [
        {"role": "system", "content": "Отвечай коротко и смешно."},
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "It ran out of grey."},
        {"role": "user", "content": "И всё?"},
        {"role": "assistant", "content": "Краткость — сестра таланта."},
    ],
]


def find(seq, sub, start):
    for i in range(start, len(seq) - len(sub) + 1):
        if seq[i:i + len(sub)] == sub:
            return i
    return -1


def replies_only_labels(ids, response, instruction):
    """Labels -100 except the tokens after each response marker up to the next instruction marker."""
    labels = [-100] * len(ids)
    i = find(ids, response, 0)
    while i >= 0:
        start = i + len(response)
        end = find(ids, instruction, start)
        stop = len(ids) if end < 0 else end
        labels[start:stop] = ids[start:stop]
        i = find(ids, response, stop)
    return labels


def main():
    models_dir, tok_dir, out_dir = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    import transformers
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file

    tok, _ = load_tokenizer(tok_dir, "qwen")
    response = tok.encode("<|im_start|>assistant\n", add_special_tokens=False)
    instruction = tok.encode("<|im_start|>user\n", add_special_tokens=False)
    rows = []
    for messages in CONVERSATIONS:
        text = chat_text(tok, messages, False)
        ids = tok.encode(text, add_special_tokens=False)
        rows.append({"messages": messages, "text": text, "input_ids": ids,
                     "labels": replies_only_labels(ids, response, instruction)})
    width = max(len(r["input_ids"]) for r in rows)
    pad = 151643
    input_ids = torch.tensor([r["input_ids"] + [pad] * (width - len(r["input_ids"])) for r in rows])
    labels = torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in rows])
    mask = torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows])
    with open(os.path.join(out_dir, "batch.json"), "w") as f:
        json.dump({"rows": rows, "pad_id": pad, "input_ids": input_ids.tolist(), "labels": labels.tolist(),
                   "attention_mask": mask.tolist(), "response_marker": response,
                   "instruction_marker": instruction}, f, ensure_ascii=False)

    path = os.path.join(models_dir, "qwen2_tied_bf16_sharded")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except TypeError:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, bias="none",
                        task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    model.save_pretrained(os.path.join(out_dir, "lora_init"))
    model.train()

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, **ADAMW)
    losses = []
    for step in range(3):
        optimizer.zero_grad()
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            grads = {}
            for name, p in model.named_parameters():
                if p.requires_grad:
                    grads[name.replace(".default", "")] = p.grad.detach().clone().contiguous()
            save_file(grads, os.path.join(out_dir, "lora_grads.safetensors"))
        optimizer.step()
    model.save_pretrained(os.path.join(out_dir, "lora_step3"))
    for sub in ["lora_init", "lora_step3"]:
        readme = os.path.join(out_dir, sub, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
    with open(os.path.join(out_dir, "train_goldens.json"), "w") as f:
        json.dump({"losses": losses, "adamw": {**ADAMW, "betas": list(ADAMW["betas"])}, "lora": {
            "r": 4, "alpha": 8, "targets": TARGETS}, "transformers": transformers.__version__,
            "torch": torch.__version__}, f, indent=1)
    print(f"train goldens: losses {losses}, batch {tuple(input_ids.shape)}, "
          f"trainable {sum(p.numel() for p in params)}", flush=True)


if __name__ == "__main__":
    main()
