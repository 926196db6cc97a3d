#!/usr/bin/env python3
"""Goldens for Ostrota's checkpoint, tokenizer and model code, made with transformers, PEFT and PyTorch.

Usage: python3 tests/goldens/make_model_goldens.py <in_dir> <out_dir>

<in_dir> is what `deno run -A tests/goldens/prepare_inputs.ts <in_dir>` writes (tokenizer files in Hugging
Face layout: <in_dir>/qwen and <in_dir>/gpt2). Everything runs on the CPU in float32, seeded, so reruns give
the same numbers. The script never stops at the first failure: each part records its error in
<out_dir>/models/goldens.json ("errors") and the next part runs.

Writes:
  <out_dir>/models/<name>/          tiny random models saved by transformers (no tokenizer files):
      qwen2_tied_bf16_sharded       Qwen2, tied embeddings, bfloat16, >= 2 safetensors shards + index
      qwen2_untied_f16              Qwen2, untied lm_head, float16, one model.safetensors
      gpt2_f32                      GPT-2, float32, model.safetensors
      gpt2_f32_bin                  the same GPT-2 as pytorch_model.bin (torch.save of the state dict)
      qwen2_tied_bf16_sharded_lora  PEFT LoRA adapter (r=4, q,k,v,o,gate,up,down, random non-zero A and B)
  <out_dir>/models/goldens.json     prompt ids, last-position logits (a seeded subset of 2048 vocabulary
                                    indices, plus the top 20), argmax and 12 greedy ids per model and prompt
  <out_dir>/tokenizer/tokenizer_goldens.json  ids, tokens, decodes and chat-template strings
The lead copies <out_dir>/models to tests/fixtures/models and <out_dir>/tokenizer to tests/fixtures/tokenizer.
"""

import json
import os
import shutil
import sys
import traceback

import numpy as np
import torch

GREEDY_STEPS = 12
LOGIT_SUBSET = 2048
TOP_K = 20
MIN_GAP = 1e-2
MAX_SEED_TRIES = 24
FIXTURE_BUDGET_BYTES = 14 * 1000 * 1000

PROMPT_RU = "Почему программисты путают Хэллоуин и Рождество?"
PROMPT_EN = "Why do programmers confuse Halloween and Christmas?"

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

TOKENIZER_TEXTS = [
    "Привет, мир! Как дела?",
    "Hello, world! How are you?",
    " leading space",
    "  two leading spaces and trailing  ",
    "emoji 😀👍🏽 and flags 🇷🇺, hedgehog 🦔",
    "tabs\tand\t\ttabs\n\nnewlines\r\n  \n   end   ",
    "digits 1234567890 3.14159 2026-11-27 x10000",
    "Сообщение <|im_start|>user в середине<|im_end|> текста",
    "before<|endoftext|>after <|endoftext|> spaced",
    "Ёжик в тумане — 100% «ёлки»…",
    "",
    "   ",
    "\n",
    "code:\n    def f(x):\n        return x ** 2\n",
    "don't I'll we've THEY'RE it's",
    "你好，世界",
    "ÀÉÎõü ñ ß café",
    "e\u0301 composed by NFC",
    "Колобок повесился.",
    "Hello , world . don 't stop ! Is it ?",
    "<|im_end|><|im_start|>assistant\n",
]

CHAT_CONVERSATION = [
    {"role": "user", "content": "Привет! Расскажи анекдот."},
    {"role": "assistant", "content": "Колобок повесился."},
    {"role": "user", "content": "Ещё один, please."},
    {"role": "assistant", "content": "Why did the chicken cross the road? 🐔"},
]

CHAT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_joke",
            "description": "Returns a joke about a topic",
            "parameters": {
                "type": "object",
                "properties": {"topic": {"type": "string", "description": "Тема шутки"}},
                "required": ["topic"],
            },
        },
    }
]

ERRORS = []


def record_error(part, exc):
    message = f"{part}: {type(exc).__name__}: {exc}"
    print(f"ERROR {message}", flush=True)
    traceback.print_exc()
    ERRORS.append({"part": part, "error": message, "traceback": traceback.format_exc()})


def write_json(path, obj, indent=None):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent, separators=(",", ":") if indent is None else None)
        f.write("\n")
    os.replace(tmp, path)


def f32_list(values):
    """Float32 values as the shortest decimals that round-trip to the same float32 (Math.fround in TS)."""
    return [float(str(np.float32(v))) for v in values]


def folder_files(path):
    return {name: os.path.getsize(os.path.join(path, name)) for name in sorted(os.listdir(path))}


def tree_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def load_tokenizer(path, kind):
    import transformers

    try:
        tok = transformers.AutoTokenizer.from_pretrained(path)
        return tok, "AutoTokenizer"
    except Exception as exc:  # noqa: BLE001 - fall back to the explicit class and report both
        record_error(f"AutoTokenizer({kind})", exc)
    if kind == "gpt2":
        cls = getattr(transformers, "GPT2TokenizerFast", None) or transformers.GPT2Tokenizer
        tok = cls(vocab_file=os.path.join(path, "vocab.json"), merges_file=os.path.join(path, "merges.txt"))
    else:
        tok = transformers.PreTrainedTokenizerFast(tokenizer_file=os.path.join(path, "tokenizer.json"))
    return tok, type(tok).__name__


def chat_text(tok, messages, add_generation_prompt, tools=None):
    kwargs = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
    if tools is not None:
        kwargs["tools"] = tools
    return tok.apply_chat_template(messages, **kwargs)


def encode_plain(tok, text):
    return list(tok(text, add_special_tokens=False)["input_ids"])


# ---------------------------------------------------------------------------------------------- tokenizers


def tokenizer_goldens(in_dir, out_dir):
    import transformers

    result = {"transformers_version": transformers.__version__, "tokenizers": {}, "errors": []}
    path = os.path.join(out_dir, "tokenizer", "tokenizer_goldens.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for kind in ["qwen", "gpt2"]:
        try:
            tok, how = load_tokenizer(os.path.join(in_dir, kind), kind)
            entry = {
                "source": f"prepare_inputs.ts {kind}",
                "loaded_with": how,
                "class": type(tok).__name__,
                "len": len(tok),
                "vocab_size": tok.vocab_size,
                "bos_token_id": tok.bos_token_id,
                "eos_token_id": tok.eos_token_id,
                "pad_token_id": tok.pad_token_id,
                "unk_token_id": tok.unk_token_id,
                "cases": [],
                "chat": [],
            }
            for text in TOKENIZER_TEXTS:
                try:
                    ids = encode_plain(tok, text)
                    entry["cases"].append(
                        {
                            "text": text,
                            "ids": ids,
                            "ids_add_special": list(tok(text)["input_ids"]),
                            "tokens": tok.convert_ids_to_tokens(ids),
                            "decoded": tok.decode(ids),
                            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
                        }
                    )
                except Exception as exc:  # noqa: BLE001
                    record_error(f"tokenizer {kind} text {text!r}", exc)
            if kind == "qwen":
                chat_cases = [
                    ("two_turns_generation_prompt", CHAT_CONVERSATION[:3], True, None),
                    ("two_turns_no_generation_prompt", CHAT_CONVERSATION, False, None),
                    (
                        "system_and_user",
                        [{"role": "system", "content": "Ты остроумный помощник."}, CHAT_CONVERSATION[0]],
                        True,
                        None,
                    ),
                    ("tools", CHAT_CONVERSATION[:1], True, CHAT_TOOLS),
                ]
                for name, messages, add_generation_prompt, tools in chat_cases:
                    try:
                        text = chat_text(tok, messages, add_generation_prompt, tools)
                        entry["chat"].append(
                            {
                                "name": name,
                                "messages": messages,
                                "tools": tools,
                                "add_generation_prompt": add_generation_prompt,
                                "text": text,
                                "ids": encode_plain(tok, text),
                            }
                        )
                    except Exception as exc:  # noqa: BLE001
                        record_error(f"tokenizer {kind} chat {name}", exc)
            result["tokenizers"][kind] = entry
            print(f"tokenizer {kind}: {how} {type(tok).__name__}, len {len(tok)}, "
                  f"{len(entry['cases'])} texts, {len(entry['chat'])} chats", flush=True)
        except Exception as exc:  # noqa: BLE001
            record_error(f"tokenizer {kind}", exc)
        result["errors"] = [e["error"] for e in ERRORS]
        write_json(path, result, indent=1)


# ------------------------------------------------------------------------------------------------- models


def load_f32(path):
    import transformers

    kwargs = {"attn_implementation": "eager"}
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)
    except TypeError:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, **kwargs)
    model.eval()
    return model


def init_weights(model, seed, embed_std, proj_std, bias_std):
    """Wide random weights so that greedy choices are far from ties; norms get gains around 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
            if name.endswith("bias"):
                value = noise * bias_std
            elif param.ndim == 1:
                value = 1.0 + 0.25 * noise
            elif any(key in name for key in ("embed_tokens", "lm_head", "wte", "wpe")):
                value = noise * embed_std
            else:
                value = noise * proj_std
            param.copy_(value.to(param.dtype))


def logit_indices(vocab_size):
    rng = np.random.default_rng(20261127)
    return sorted(int(i) for i in rng.choice(vocab_size, size=LOGIT_SUBSET, replace=False))


@torch.no_grad()
def last_logits(model, ids):
    out = model(input_ids=torch.tensor([ids], dtype=torch.long))
    return out.logits[0, -1].float()


@torch.no_grad()
def greedy(model, ids, steps):
    """Greedy decoding by full forward passes (no cache), recording each step's top-1/top-2 gap."""
    seq = list(ids)
    chosen, gaps = [], []
    for _ in range(steps):
        logits = last_logits(model, seq)
        top2 = torch.topk(logits, 2)
        gaps.append(float(top2.values[0] - top2.values[1]))
        nxt = int(top2.indices[0])
        chosen.append(nxt)
        seq.append(nxt)
    return chosen, gaps


@torch.no_grad()
def hf_generate(model, ids, steps):
    """model.generate with eos disabled, so that exactly `steps` tokens come back."""
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.eos_token_id = None
    input_ids = torch.tensor([ids], dtype=torch.long)
    out = model.generate(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        do_sample=False,
        max_new_tokens=steps,
        pad_token_id=0,
    )
    return [int(t) for t in out[0, len(ids):]]


def case_golden(model, name, prompt_text, ids, indices):
    logits = last_logits(model, ids)
    top = torch.topk(logits, TOP_K)
    greedy_ids, gaps = greedy(model, ids, GREEDY_STEPS)
    case = {
        "name": name,
        "prompt_text": prompt_text,
        "prompt_ids": list(ids),
        "logits_subset": f32_list(logits[indices].tolist()),
        "top20": [[int(i), v] for i, v in zip(top.indices.tolist(), f32_list(top.values.tolist()))],
        "argmax": int(torch.argmax(logits)),
        "greedy_ids": greedy_ids,
        "greedy_gaps": gaps,
        "min_gap": min(gaps),
        "eos_disabled": True,
    }
    try:
        generated = hf_generate(model, ids, GREEDY_STEPS)
        case["generate_ids"] = generated
        case["generate_matches_greedy"] = generated == greedy_ids
    except Exception as exc:  # noqa: BLE001
        record_error(f"generate {name}", exc)
        case["generate_ids"] = None
    return case


def prompts_for(tok, chat):
    cases = [("raw_ru", PROMPT_RU, encode_plain(tok, PROMPT_RU)), ("raw_en", PROMPT_EN, encode_plain(tok, PROMPT_EN))]
    if chat:
        for lang, prompt in (("ru", PROMPT_RU), ("en", PROMPT_EN)):
            text = chat_text(tok, [{"role": "user", "content": prompt}], True)
            cases.append((f"chat_{lang}", text, encode_plain(tok, text)))
    return cases


def model_goldens(model, prompts, vocab_size):
    indices = logit_indices(vocab_size)
    idx = torch.tensor(indices, dtype=torch.long)
    cases = [case_golden(model, name, text, ids, idx) for name, text, ids in prompts]
    return {"logit_indices": indices, "cases": cases, "min_gap": min(c["min_gap"] for c in cases)}


def build_qwen(seed, hidden, layers, heads, kv_heads, intermediate, tied):
    import transformers

    common = dict(
        vocab_size=151936,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        tie_word_embeddings=tied,
        bos_token_id=151643,
        eos_token_id=151645,
        use_sliding_window=False,
        hidden_act="silu",
    )
    # transformers 5 spells RoPE as rope_parameters; 4.x as rope_theta. The config.json written records
    # whichever was accepted, and the goldens come from reloading that folder.
    try:
        config = transformers.Qwen2Config(rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, **common)
    except Exception as exc:  # noqa: BLE001
        print(f"WARNING Qwen2Config(rope_parameters=...) failed ({exc}); using rope_theta", flush=True)
        config = transformers.Qwen2Config(rope_theta=1000000.0, **common)
    torch.manual_seed(seed)
    model = transformers.Qwen2ForCausalLM(config)
    init_weights(model, seed, embed_std=1.0, proj_std=0.35, bias_std=0.3)
    model.eval()
    return model


def build_gpt2(seed, n_embd, layers, heads, positions):
    import transformers

    common = dict(
        vocab_size=50257,
        n_positions=positions,
        n_embd=n_embd,
        n_layer=layers,
        n_head=heads,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=50256,
        eos_token_id=50256,
    )
    try:
        config = transformers.GPT2Config(tie_word_embeddings=True, **common)
    except Exception:  # noqa: BLE001 - configs without the field tie GPT-2 embeddings by default
        config = transformers.GPT2Config(**common)
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(config)
    init_weights(model, seed, embed_std=1.0, proj_std=0.35, bias_std=0.3)
    model.eval()
    return model


def save_model(model, path, dtype, max_shard_size=None):
    if os.path.exists(path):
        shutil.rmtree(path)
    model = model.to(dtype)
    kwargs = {}
    if max_shard_size is not None:
        kwargs["max_shard_size"] = max_shard_size
    model.save_pretrained(path, **kwargs)
    return folder_files(path)


def search_seed(part, out_path, build, save, tok, chat, vocab_size, base_seed):
    """Builds, saves and reloads (float32) models for successive seeds until no greedy step is a near-tie."""
    best = None
    for attempt in range(MAX_SEED_TRIES):
        seed = base_seed + attempt
        tmp_path = out_path + f".seed{seed}"
        model = build(seed)
        files = save(model, tmp_path)
        reloaded = load_f32(tmp_path)
        goldens = model_goldens(reloaded, prompts_for(tok, chat), vocab_size)
        print(f"{part}: seed {seed} min gap {goldens['min_gap']:.4g}", flush=True)
        if best is None or goldens["min_gap"] > best[1]["min_gap"]:
            if best is not None:
                shutil.rmtree(best[2], ignore_errors=True)
            best = (seed, goldens, tmp_path, files)
        else:
            shutil.rmtree(tmp_path, ignore_errors=True)
        if goldens["min_gap"] >= MIN_GAP:
            break
    seed, goldens, tmp_path, files = best
    if os.path.exists(out_path):
        shutil.rmtree(out_path)
    os.replace(tmp_path, out_path)
    goldens["seed"] = seed
    goldens["gap_ok"] = goldens["min_gap"] >= MIN_GAP
    goldens["files"] = folder_files(out_path)
    if not goldens["gap_ok"]:
        print(f"WARNING {part}: best min gap {goldens['min_gap']} < {MIN_GAP}", flush=True)
    return goldens


def safetensors_keys(path):
    from safetensors import safe_open

    keys = []
    for name in sorted(os.listdir(path)):
        if name.endswith(".safetensors"):
            with safe_open(os.path.join(path, name), framework="pt") as f:
                keys.extend(f.keys())
    return sorted(keys)


def lora_goldens(base_path, adapter_path, tok, base_seed):
    from peft import LoraConfig, PeftModel, get_peft_model

    best = None
    for attempt in range(MAX_SEED_TRIES):
        seed = base_seed + attempt
        base = load_f32(base_path)
        torch.manual_seed(seed)
        config = LoraConfig(
            r=4, lora_alpha=8, lora_dropout=0.0, target_modules=LORA_TARGETS, bias="none", task_type="CAUSAL_LM"
        )
        peft_model = get_peft_model(base, config)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_A" in name or "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
        peft_model.eval()
        tmp_path = adapter_path + f".seed{seed}"
        if os.path.exists(tmp_path):
            shutil.rmtree(tmp_path)
        peft_model.save_pretrained(tmp_path)
        reloaded = PeftModel.from_pretrained(load_f32(base_path), tmp_path)
        reloaded.eval()
        goldens = model_goldens(reloaded, prompts_for(tok, True), 151936)
        in_memory = last_logits(peft_model, goldens["cases"][0]["prompt_ids"])
        again = last_logits(reloaded, goldens["cases"][0]["prompt_ids"])
        goldens["reload_max_abs_diff"] = float((in_memory - again).abs().max())
        print(f"lora: seed {seed} min gap {goldens['min_gap']:.4g}", flush=True)
        if best is None or goldens["min_gap"] > best[1]["min_gap"]:
            if best is not None:
                shutil.rmtree(best[2], ignore_errors=True)
            best = (seed, goldens, tmp_path)
        else:
            shutil.rmtree(tmp_path, ignore_errors=True)
        if goldens["min_gap"] >= MIN_GAP:
            break
    seed, goldens, tmp_path = best
    if os.path.exists(adapter_path):
        shutil.rmtree(adapter_path)
    os.replace(tmp_path, adapter_path)
    readme = os.path.join(adapter_path, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    config_path = os.path.join(adapter_path, "adapter_config.json")
    with open(config_path, encoding="utf-8") as f:
        adapter_config = json.load(f)
    adapter_config["base_model_name_or_path"] = os.path.basename(base_path)
    write_json(config_path, adapter_config, indent=2)
    goldens["seed"] = seed
    goldens["gap_ok"] = goldens["min_gap"] >= MIN_GAP
    goldens["files"] = folder_files(adapter_path)
    goldens["lora"] = {"r": 4, "alpha": 8, "targets": LORA_TARGETS, "init": "A, B ~ N(0, 0.5^2)"}
    goldens["keys"] = safetensors_keys(adapter_path)
    return goldens


def main():
    if len(sys.argv) != 3:
        print("usage: make_model_goldens.py <in_dir> <out_dir>", file=sys.stderr)
        sys.exit(2)
    in_dir, out_dir = sys.argv[1], sys.argv[2]
    models_dir = os.path.join(out_dir, "models")
    os.makedirs(models_dir, exist_ok=True)
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    torch.use_deterministic_algorithms(True, warn_only=True)

    goldens = {"models": {}, "errors": []}
    goldens_path = os.path.join(models_dir, "goldens.json")

    def flush():
        goldens["errors"] = [e["error"] for e in ERRORS]
        write_json(goldens_path, goldens)

    try:
        import transformers

        goldens["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
        try:
            import peft

            goldens["versions"]["peft"] = peft.__version__
        except Exception as exc:  # noqa: BLE001
            record_error("import peft", exc)
        goldens["prompts"] = {"ru": PROMPT_RU, "en": PROMPT_EN}
        goldens["settings"] = {
            "greedy_steps": GREEDY_STEPS,
            "logit_subset": LOGIT_SUBSET,
            "top_k": TOP_K,
            "min_gap": MIN_GAP,
            "compute": "CPU float32, eager attention, folders reloaded with dtype=float32",
        }
        flush()
    except Exception as exc:  # noqa: BLE001
        record_error("setup", exc)
        flush()

    try:
        tokenizer_goldens(in_dir, out_dir)
    except Exception as exc:  # noqa: BLE001
        record_error("tokenizer goldens", exc)

    qwen_tok = gpt2_tok = None
    try:
        qwen_tok, _ = load_tokenizer(os.path.join(in_dir, "qwen"), "qwen")
    except Exception as exc:  # noqa: BLE001
        record_error("load qwen tokenizer", exc)
    try:
        gpt2_tok, _ = load_tokenizer(os.path.join(in_dir, "gpt2"), "gpt2")
    except Exception as exc:  # noqa: BLE001
        record_error("load gpt2 tokenizer", exc)

    qwen_a = os.path.join(models_dir, "qwen2_tied_bf16_sharded")
    try:
        g = search_seed(
            "qwen2_tied_bf16_sharded",
            qwen_a,
            lambda seed: build_qwen(seed, hidden=16, layers=2, heads=4, kv_heads=2, intermediate=32, tied=True),
            lambda model, path: save_model(model, path, torch.bfloat16, max_shard_size="2MB"),
            qwen_tok,
            True,
            151936,
            1000,
        )
        g["description"] = "Qwen2, tied embeddings, bfloat16, sharded safetensors"
        g["keys"] = safetensors_keys(qwen_a)
        g["shards"] = sorted(n for n in os.listdir(qwen_a) if n.endswith(".safetensors"))
        if len(g["shards"]) < 2:
            print(f"WARNING qwen2_tied_bf16_sharded has {len(g['shards'])} shard(s)", flush=True)
        g["lm_head_saved"] = "lm_head.weight" in g["keys"]
        goldens["models"]["qwen2_tied_bf16_sharded"] = g
    except Exception as exc:  # noqa: BLE001
        record_error("qwen2_tied_bf16_sharded", exc)
    flush()

    try:
        path = os.path.join(models_dir, "qwen2_untied_f16")
        g = search_seed(
            "qwen2_untied_f16",
            path,
            lambda seed: build_qwen(seed, hidden=8, layers=2, heads=2, kv_heads=1, intermediate=16, tied=False),
            lambda model, p: save_model(model, p, torch.float16),
            qwen_tok,
            True,
            151936,
            2000,
        )
        g["description"] = "Qwen2, untied lm_head, float16, single safetensors file"
        g["keys"] = safetensors_keys(path)
        goldens["models"]["qwen2_untied_f16"] = g
    except Exception as exc:  # noqa: BLE001
        record_error("qwen2_untied_f16", exc)
    flush()

    gpt2_c = os.path.join(models_dir, "gpt2_f32")
    try:
        g = search_seed(
            "gpt2_f32",
            gpt2_c,
            lambda seed: build_gpt2(seed, n_embd=8, layers=2, heads=2, positions=256),
            lambda model, p: save_model(model, p, torch.float32),
            gpt2_tok,
            False,
            50257,
            3000,
        )
        g["description"] = "GPT-2, tied lm_head, float32 safetensors"
        g["keys"] = safetensors_keys(gpt2_c)
        goldens["models"]["gpt2_f32"] = g
    except Exception as exc:  # noqa: BLE001
        record_error("gpt2_f32", exc)
    flush()

    try:
        path = os.path.join(models_dir, "gpt2_f32_bin")
        if os.path.exists(path):
            shutil.rmtree(path)
        os.makedirs(path)
        for name in ("config.json", "generation_config.json"):
            if os.path.exists(os.path.join(gpt2_c, name)):
                shutil.copy(os.path.join(gpt2_c, name), os.path.join(path, name))
        source = load_f32(gpt2_c)
        # transformers 5 no longer writes pytorch_model.bin; torch.save of the state dict is what it used
        # to write. The tied lm_head.weight is kept: it shares its storage with transformer.wte.weight.
        state = source.state_dict()
        torch.save(state, os.path.join(path, "pytorch_model.bin"))
        g = {"description": "the gpt2_f32 model as pytorch_model.bin (torch.save zip format)"}
        g["keys"] = sorted(state.keys())
        g["shared_storage"] = [
            k for k in state if k != "transformer.wte.weight"
            and state[k].untyped_storage().data_ptr() == state["transformer.wte.weight"].untyped_storage().data_ptr()
        ]
        try:
            reloaded = load_f32(path)
            g.update(model_goldens(reloaded, prompts_for(gpt2_tok, False), 50257))
            g["loads_in_transformers"] = True
        except Exception as exc:  # noqa: BLE001
            record_error("gpt2_f32_bin reload", exc)
            g["loads_in_transformers"] = False
        g["files"] = folder_files(path)
        goldens["models"]["gpt2_f32_bin"] = g
    except Exception as exc:  # noqa: BLE001
        record_error("gpt2_f32_bin", exc)
    flush()

    try:
        adapter_path = os.path.join(models_dir, "qwen2_tied_bf16_sharded_lora")
        g = lora_goldens(qwen_a, adapter_path, qwen_tok, 4000)
        g["description"] = "PEFT LoRA on qwen2_tied_bf16_sharded, applied unmerged"
        g["base"] = "qwen2_tied_bf16_sharded"
        goldens["models"]["qwen2_tied_bf16_sharded_lora"] = g
    except Exception as exc:  # noqa: BLE001
        record_error("lora", exc)
    flush()

    total = tree_bytes(models_dir) + tree_bytes(os.path.join(out_dir, "tokenizer"))
    print("\n=== summary ===")
    for name, g in goldens["models"].items():
        files = g.get("files", {})
        size = sum(files.values())
        print(f"{name}: seed {g.get('seed')} min_gap {g.get('min_gap')} gap_ok {g.get('gap_ok')} "
              f"{size} bytes {sorted(files)}")
    print(f"fixtures total: {total} bytes (budget {FIXTURE_BUDGET_BYTES})")
    if total > FIXTURE_BUDGET_BYTES:
        print("WARNING fixtures exceed the budget; shrink the widths", flush=True)
    print(f"errors: {len(ERRORS)}")
    for e in ERRORS:
        print(f"  {e['error']}")
    flush()


if __name__ == "__main__":
    main()
