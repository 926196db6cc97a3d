"""PyTorch reference figures for `deno task bench --torch FILE`, run on the same GPU in the same call.

Usage: python3 bench/torch_ref.py OUT.json [--quick]
Measures: cuBLAS SGEMM 4096^3 with TF32 off, bf16 matmul 4096^3, device copy bandwidth, a PEFT LoRA step at
the Qwen2.5-7B shape in bf16 (r=16 on all linear layers, batch 8 x 256, gradient checkpointing), a full
fine-tuning step at the rugpt3small shape in fp32 (AdamW, batch 8 x 256), and transformers `generate`
tokens/s at batch 1 for both (random weights). Each part is guarded: a failure is recorded and the rest runs.
"""
import json
import statistics
import sys
import time

import torch

out_path = sys.argv[1]
quick = "--quick" in sys.argv
result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "errors": {}}


def timed(fn, reps=5, warmup=1):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def part(name, fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - every part is independent
        result["errors"][name] = repr(exc)
        print(f"ERROR {name}: {exc!r}", flush=True)
    torch.cuda.empty_cache()


def gemm():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    a = torch.randn(4096, 4096, device="cuda")
    b = torch.randn(4096, 4096, device="cuda")
    ms = timed(lambda: a @ b, reps=20)
    result["sgemm_tflops"] = 2 * 4096**3 / ms / 1e9
    ah, bh = a.bfloat16(), b.bfloat16()
    ms = timed(lambda: ah @ bh, reps=20)
    result["bf16_tflops"] = 2 * 4096**3 / ms / 1e9


def copy():
    x = torch.randn(256 * 2**20, device="cuda")
    y = torch.empty_like(x)
    ms = timed(lambda: y.copy_(x), reps=20)
    result["copy_gbps"] = 2 * x.numel() * 4 / ms / 1e6


def train_step(model, reps):
    """Median ms of one AdamW step (forward, backward, update) on a random 8 x 256 batch, and peak GiB."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(0, 30000, (8, 256), device="cuda")

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    torch.cuda.reset_peak_memory_stats()
    ms = timed(step, reps=reps)
    return ms, torch.cuda.max_memory_allocated() / 2**30


def qwen_config():
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                       rope_theta=1e6, tie_word_embeddings=False, use_cache=False)


def lora_step():
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2ForCausalLM

    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(qwen_config())
    torch.set_default_dtype(torch.float32)
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], task_type="CAUSAL_LM"))
    model.train()
    result["lora_step_ms"], result["lora_peak_gib"] = train_step(model, reps=2 if quick else 3)
    model.eval()
    base = model.get_base_model()
    base.config.use_cache = True
    prompt = torch.randint(0, 30000, (1, 16), device="cuda")
    with torch.no_grad(), model.disable_adapter():
        result["generate_7b_tps"] = generate_rate(base, prompt)
    del model, base


def generate_rate(model, prompt, tokens=32):
    def run(n):
        return lambda: model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    one = timed(run(1), reps=3)
    many = timed(run(tokens), reps=3)
    return (tokens - 1) / ((many - one) / 1000)


def full_ft_step():
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=50264, n_positions=2048, n_embd=768, n_layer=12, n_head=12,
                        activation_function="gelu_new", use_cache=False)
    with torch.device("cuda"):
        model = GPT2LMHeadModel(config)
    model.train()
    result["full_ft_step_ms"], result["full_ft_peak_gib"] = train_step(model, reps=5)
    model.eval()
    model.config.use_cache = True
    prompt = torch.randint(0, 30000, (1, 16), device="cuda")
    with torch.no_grad():
        result["generate_small_tps"] = generate_rate(model, prompt)


part("gemm", gemm)
part("copy", copy)
part("full_ft_step", full_ft_step)
part("lora_step", lora_step)
with open(out_path, "w") as f:
    json.dump(result, f, indent=1)
for k, v in result.items():
    print(f"torch {k}: {v}", flush=True)
