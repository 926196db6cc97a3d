/**
 * Artifacts Ostrota trained (tests/goldens/make_export_inputs.ts) loaded by PEFT and transformers
 * (tests/goldens/check_exports.py on the GPU machine): the QLoRA adapter on its base and the fully fine-tuned
 * GPT-2 give transformers the logits they give this lab (≤ 1e-4 relative, norm-wise over a vocabulary subset).
 */
import { assertClose } from "../../compute/harness.ts";

const DIR = new URL("../../fixtures/exports/", import.meta.url).pathname;
const ours = JSON.parse(Deno.readTextFileSync(`${DIR}ostrota_logits.json`));
let theirs: Record<string, number[]> | null = null;
try {
  theirs = JSON.parse(Deno.readTextFileSync(`${DIR}transformers_logits.json`));
} catch (err) {
  if (!(err instanceof Deno.errors.NotFound)) throw err;
}

for (const name of ["qwen_adapter", "gpt2_full"]) {
  Deno.test({
    name: `export golden: ${name} loads in ${
      name === "qwen_adapter" ? "PEFT" : "transformers"
    } with this lab's logits${
      theirs ? "" : " [IGNORED: transformers_logits.json missing; run check_exports.py]"
    }`,
    ignore: theirs === null,
    fn: () => assertClose(name, theirs![name], ours[name], 1e-4),
  });
}
