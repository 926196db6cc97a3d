import assert from "node:assert/strict";
import { labRoots } from "../../../lib/paths.ts";
import {
  InferenceService,
  PromptTooLongError,
  StopFilter,
  type TokenEvent,
} from "../../../lib/lab/inference.ts";
import { loadTokenizer } from "../../../lib/tokenizer/mod.ts";
import { resolveModel } from "../../../lib/cli/resolve.ts";

const roots = labRoots("/nonexistent-ostrota-home", new Map<string, string>());
const base = {
  adapter: null,
  messages: [{ role: "user" as const, content: "Как дела?" }],
  maxTokens: 6,
  temperature: 0,
  topP: 1,
  topK: 0,
  seed: 0,
  stop: [],
};

Deno.test("StopFilter holds back a possible stop string and cuts at the first one", () => {
  const filter = new StopFilter(["END", "\n\n"]);
  assert.equal(filter.push("hello E"), "hello ");
  assert.equal(filter.push("N"), "");
  assert.equal(filter.push("x"), "ENx");
  assert.equal(filter.push(" done\n"), " done");
  assert.equal(filter.push("\nmore"), "");
  assert.equal(filter.stopped, true);
  assert.equal(filter.flush(), "");
  const plain = new StopFilter(["##"]);
  assert.equal(plain.push("a#"), "a");
  assert.equal(plain.flush(), "#");
});

Deno.test("the inference service streams tokens in order, one request at a time, and the text is their sum", async () => {
  const service = new InferenceService(roots, { maxLoaded: 1 });
  try {
    const events: { side: string; event: TokenEvent }[] = [];
    const order: string[] = [];
    const [a, b] = await Promise.all([
      service.generate({ ...base, model: "tiny-gpt2" }, (event) => events.push({ side: "a", event })).then(
        (r) => {
          order.push("a");
          return r;
        },
      ),
      service.generate(
        { ...base, model: "tiny-gpt2", seed: 1, temperature: 1 },
        (event) => events.push({ side: "b", event }),
      ).then((r) => {
        order.push("b");
        return r;
      }),
    ]);
    assert.deepEqual(order, ["a", "b"]);
    const sides = events.map((e) => e.side);
    assert.deepEqual(
      sides,
      [...sides.filter((s) => s === "a"), ...sides.filter((s) => s === "b")],
      "never interleaved",
    );
    assert.equal(a.text, events.filter((e) => e.side === "a").map((e) => e.event.text).join(""));
    assert.ok(a.completionTokens >= 1 && a.completionTokens <= 6);
    assert.ok(a.promptTokens > 3);
    assert.ok(b.queuedSeconds >= 0);
    // The same prompt, greedy: the same answer as a lone generation (the model is reused from the LRU).
    const again = await service.generate({ ...base, model: "tiny-gpt2" });
    assert.equal(again.text, a.text);
    assert.equal(service.loadedModels().length, 1);

    // A second model evicts the first (maxLoaded 1).
    await service.generate({ ...base, model: "tiny-qwen2", maxTokens: 2 });
    assert.equal(service.loadedModels().length, 1);
    assert.match(service.loadedModels()[0].dir, /tiny-qwen2$/);
  } finally {
    await service.close();
  }
});

Deno.test("a too-long prompt is refused naming the limit; an aborted request stops at the next token", async () => {
  const service = new InferenceService(roots);
  try {
    const tokenizer = await loadTokenizer(await resolveModel("tiny-gpt2"));
    const long = "слово ".repeat(400);
    assert.ok(tokenizer.encode(long).length > 512);
    await assert.rejects(
      service.generate({ ...base, model: "tiny-gpt2", messages: [{ role: "user", content: long }] }),
      (err: unknown) =>
        err instanceof PromptTooLongError &&
        /context is 512 tokens: shorten the prompt to at most 506 tokens$/
          .test(err.message),
    );
    // A prompt that fits, with too many new tokens; a long prompt with more new tokens than the whole context.
    await assert.rejects(
      service.generate({ ...base, model: "tiny-gpt2", maxTokens: 600 }),
      (err: unknown) =>
        err instanceof PromptTooLongError &&
        err.message.endsWith(`shorten the prompt or lower max_tokens to at most ${512 - err.promptTokens}`),
    );
    await assert.rejects(
      service.generate({
        ...base,
        model: "tiny-gpt2",
        maxTokens: 600,
        messages: [{ role: "user", content: long }],
      }),
      (err: unknown) =>
        err instanceof PromptTooLongError &&
        err.message.endsWith("lower max_tokens below 512 and shorten the prompt to fit the rest"),
    );
    const controller = new AbortController();
    let seen = 0;
    const result = await service.generate(
      { ...base, model: "tiny-gpt2", maxTokens: 50, temperature: 1, signal: controller.signal },
      () => {
        if (++seen === 2) controller.abort();
      },
    );
    assert.equal(result.finishReason, "cancelled");
    assert.ok(result.completionTokens <= 3, `stopped early, got ${result.completionTokens} tokens`);
    await assert.rejects(
      service.generate({ ...base, model: "tiny-gpt2", temperature: 5 }),
      /temperature must be a number in \[0, 2\]/,
    );
    await assert.rejects(service.generate({ ...base, model: "../../etc" }), /outside the allowed folders/);
    await assert.rejects(service.generate({ ...base, model: "no-such-model" }), /not found under/);
  } finally {
    await service.close();
  }
});
