/**
 * A merged export (base + scaling * B @ A written as a plain HF folder) computes what the base with the adapter
 * applied unmerged computes; LoraLinear.merge does the same in memory.
 */
import { exportMerged } from "../../../lib/train/export.ts";
import { loadAdapter } from "../../../lib/lora/peft.ts";
import { LoraLinear } from "../../../lib/models/linear.ts";
import { loadModel } from "../../../lib/models/mod.ts";
import { promptLogits } from "../models/_logits.ts";
import { assertClose, gpuTest } from "../../compute/harness.ts";

const FIXTURES = new URL("../../fixtures/models/", import.meta.url).pathname;
const IDS = [9707, 11, 1879, 0, 42, 100];

gpuTest(
  "export: the merged model's logits equal base + adapter unmerged (f32 export), and merge() in memory",
  async () => {
    const out = await Deno.makeTempDir({ prefix: "ostrota-merged-" });
    const base = `${FIXTURES}qwen2_tied_bf16_sharded`;
    const adapter = `${FIXTURES}qwen2_tied_bf16_sharded_lora`;
    try {
      const adapted = await loadModel(base);
      await loadAdapter(adapted, adapter);
      const want = await promptLogits(adapted, IDS);
      for (const slot of adapted.linearSlots()) {
        const layer = slot.get();
        if (layer instanceof LoraLinear) slot.set(layer.merge());
      }
      assertClose("merge() in memory", await promptLogits(adapted, IDS), want, 1e-5);
      adapted.dispose();
      await exportMerged(base, adapter, `${out}/merged`, "f32");
      const merged = await loadModel(`${out}/merged`);
      assertClose("merged export", await promptLogits(merged, IDS), want, 1e-5);
      merged.dispose();
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
);
