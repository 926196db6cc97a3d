/**
 * Our Qwen2 and GPT-2 against transformers (tests/fixtures/models, made by tests/goldens/make_model_goldens.py):
 * last-position logits within 1e-4 (relative, norm-wise over a fixed 2048-id subset), the same argmax and the
 * same 12 greedy tokens, for Russian and English prompts, raw and chat-templated; the checkpoints cover bf16
 * sharded, f16, f32 safetensors and pytorch_model.bin, tied and untied heads, and a PEFT adapter applied
 * unmerged.
 */
import { generate } from "../../../lib/generate/generate.ts";
import { argmax } from "../../../lib/generate/sampling.ts";
import { loadAdapter } from "../../../lib/lora/peft.ts";
import { loadModel } from "../../../lib/models/mod.ts";
import type { CausalLM } from "../../../lib/models/types.ts";
import { promptLogits } from "./_logits.ts";
import { assertClose, gpuTest } from "../../compute/harness.ts";

const FIXTURES = new URL("../../fixtures/models/", import.meta.url).pathname;

interface Case {
  name: string;
  prompt_ids: number[];
  logits_subset: number[];
  argmax: number;
  greedy_ids: number[];
}

interface ModelGolden {
  logit_indices: number[];
  cases: Case[];
  base?: string;
}

const goldens = JSON.parse(Deno.readTextFileSync(`${FIXTURES}goldens.json`)) as {
  models: Record<string, ModelGolden>;
};

async function checkModel(model: CausalLM, golden: ModelGolden): Promise<void> {
  for (const c of golden.cases) {
    const logits = await promptLogits(model, c.prompt_ids);
    assertClose(`${c.name} logits`, golden.logit_indices.map((i) => logits[i]), c.logits_subset, 1e-4);
    if (argmax(logits) !== c.argmax) {
      throw new Error(`${c.name}: argmax ${argmax(logits)}, transformers ${c.argmax}`);
    }
    const { ids } = await generate(model, c.prompt_ids, { maxNewTokens: c.greedy_ids.length });
    if (ids.join() !== c.greedy_ids.join()) {
      throw new Error(`${c.name}: greedy ${ids} vs transformers ${c.greedy_ids}`);
    }
  }
}

for (const [name, golden] of Object.entries(goldens.models)) {
  gpuTest(
    `golden vs transformers: ${name} — logits ≤ 1e-4, argmax and 12 greedy tokens identical`,
    async () => {
      const model = await loadModel(`${FIXTURES}${golden.base ?? name}`);
      try {
        if (golden.base) await loadAdapter(model, `${FIXTURES}${name}`);
        await checkModel(model, golden);
      } finally {
        model.dispose();
      }
    },
  );
}

gpuTest(
  "adapters that do not fit the base are refused with the file, the key and the shapes named",
  async () => {
    const model = await loadModel(`${FIXTURES}qwen2_untied_f16`);
    const gpt2 = await loadModel(`${FIXTURES}gpt2_f32`);
    try {
      const expect = async (fn: () => Promise<unknown>, ...parts: string[]) => {
        try {
          await fn();
        } catch (err) {
          const message = (err as Error).message;
          for (const part of parts) {
            if (!message.includes(part)) {
              throw new Error(`"${part}" missing from: ${message}`);
            }
          }
          return;
        }
        throw new Error("the adapter was accepted");
      };
      // A hidden-16 adapter on a hidden-8 model of the same architecture.
      await expect(
        () => loadAdapter(model, `${FIXTURES}qwen2_tied_bf16_sharded_lora`),
        "adapter_model.safetensors",
        "lora_A",
        "needs [4,8]",
      );
      // Qwen's projection names on a GPT-2.
      await expect(
        () => loadAdapter(gpt2, `${FIXTURES}qwen2_tied_bf16_sharded_lora`),
        "no linear module matches",
        "q_proj",
      );
      await expect(() => loadAdapter(model, `${FIXTURES}gpt2_f32`), "adapter_config.json does not exist");
    } finally {
      model.dispose();
      gpt2.dispose();
    }
  },
);
