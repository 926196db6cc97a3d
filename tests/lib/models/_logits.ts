/** Last-position logits of a prompt by a full forward (no cache), for tests comparing models. */
import { noGrad } from "../../../compute/autograd.ts";
import { embedding } from "../../../compute/embedding.ts";
import { matmul } from "../../../compute/matmul.ts";
import { tensor, tidy } from "../../../compute/tensor.ts";
import type { CausalLM } from "../../../lib/models/types.ts";

export async function promptLogits(model: CausalLM, ids: readonly number[]): Promise<Float32Array> {
  const out = noGrad(() =>
    tidy(() => {
      const t = ids.length;
      const hidden = model.hidden(tensor(Int32Array.from(ids), [1, t], "i32"), {
        positions: tensor(Int32Array.from(ids, (_, i) => i), [1, t], "i32"),
      }).reshape([t, model.hiddenSize]);
      return matmul(embedding(tensor([t - 1], [1], "i32"), hidden), model.lmHead(), { transB: true });
    })
  );
  const data = (await out.read()) as Float32Array;
  out.dispose();
  return data;
}
