/** The plain prompt/answer format of models without a chat template (GPT-2, rugpt3small). */
import assert from "node:assert/strict";
import { loadTokenizer, writeGpt2TokenizerFiles } from "../../../lib/tokenizer/mod.ts";
import {
  encodeExample,
  IGNORE,
  promptIds,
  sftFormat,
  trainableTokens,
  truncate,
} from "../../../lib/train/format.ts";

Deno.test("format: plain models train on the answer and eos only, and are prompted with the same prefix", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ostrota-gpt2-tok-" });
  try {
    await writeGpt2TokenizerFiles(dir);
    const tokenizer = await loadTokenizer(dir);
    const format = sftFormat(tokenizer);
    assert.equal(format.kind, "plain");
    const messages = [{ role: "user" as const, content: "Где рыба?" }, {
      role: "assistant" as const,
      content: "Отпустил.",
    }];
    const ex = encodeExample(tokenizer, format, messages);
    const prompt = promptIds(tokenizer, format, messages.slice(0, 1));
    assert.deepEqual(
      ex.ids.slice(0, prompt.length),
      prompt,
      "training sequences start with the generation prompt",
    );
    assert.equal(
      tokenizer.decode(prompt.slice(tokenizer.bosId !== undefined ? 1 : 0)),
      "Вопрос: Где рыба?\nОтвет:",
    );
    assert.ok(ex.labels.slice(0, prompt.length).every((l) => l === IGNORE), "no loss on the prompt");
    const answer = ex.labels.slice(prompt.length);
    assert.equal(answer.at(-1), tokenizer.eosIds[0], "the answer ends with eos");
    assert.equal(tokenizer.decode(answer.slice(0, -1)), " Отпустил.");
    assert.equal(trainableTokens(ex), answer.length);
    const cut = truncate(ex, prompt.length);
    assert.equal(trainableTokens(cut), 0, "truncated to the prompt, nothing is left to learn");
    assert.throws(
      () => encodeExample(tokenizer, format, messages.slice(0, 1)),
      /must end with an assistant reply/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
