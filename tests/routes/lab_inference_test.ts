/**
 * Generation over HTTP: the Playground's SSE stream (one event per token, a client that disconnects stops its
 * generation, a too-long prompt is a 400 naming the limit) and the OpenAI-compatible API driven by the
 * official `openai` client, streamed and not, with its error shape for bad requests.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { readSseEvents } from "./_sse.ts";
import { postJson, startLabWithJobs } from "./_lab.ts";

const PROMPT = "Почему программисты путают Хэллоуин и Рождество?";

Deno.test("Playground SSE: tokens one by one, disconnect stops the generation, too-long prompt is a 400", async () => {
  const lab = await startLabWithJobs();
  try {
    const response = await postJson(`${lab.url}/api/playground/generate`, {
      model: "tiny-gpt2",
      prompt: PROMPT,
      maxTokens: 8,
      temperature: 1,
      seed: 3,
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type")!, /text\/event-stream/);
    const events = await readSseEvents(response);
    const tokens = events.filter((e) => e.event === "token").map((e) => JSON.parse(e.data));
    const done = JSON.parse(events.at(-1)!.data);
    assert.equal(events.at(-1)!.event, "done");
    assert.ok(tokens.length >= 1);
    assert.deepEqual(tokens.map((t) => t.index), tokens.map((_, i) => i), "one event per token, in order");
    assert.equal(done.completionTokens, tokens.length);
    assert.equal(done.text, tokens.map((t) => t.text).join(""));
    assert.ok(done.promptTokens > 5);

    // A client that leaves after the first token: its 400-token generation stops, so the next request does
    // not wait for it.
    const long = await postJson(`${lab.url}/api/playground/generate`, {
      model: "tiny-gpt2",
      prompt: PROMPT,
      maxTokens: 400,
      temperature: 1,
    });
    const reader = long.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /event: token/);
    await reader.cancel();
    const started = performance.now();
    const next = await readSseEvents(
      await postJson(`${lab.url}/api/playground/generate`, {
        model: "tiny-gpt2",
        prompt: PROMPT,
        maxTokens: 2,
      }),
    );
    const after = JSON.parse(next.at(-1)!.data);
    assert.ok(after.queuedSeconds < 2, `waited ${after.queuedSeconds} s for a cancelled generation`);
    assert.ok(performance.now() - started < 5000);

    const tooLong = await postJson(`${lab.url}/api/playground/generate`, {
      model: "tiny-gpt2",
      prompt: "слово ".repeat(400),
      maxTokens: 8,
    });
    assert.equal(tooLong.status, 400);
    assert.match((await tooLong.json()).error, /the model's context is 512 tokens/);
    const unknown = await postJson(`${lab.url}/api/playground/generate`, {
      model: "tiny-gpt2",
      prompt: "a",
      x: 1,
    });
    assert.equal(unknown.status, 400);
    assert.match((await unknown.json()).error, /unknown field "x"/);
  } finally {
    await lab.close();
  }
});

Deno.test("the official openai client lists models and chats, streamed and not", async () => {
  const lab = await startLabWithJobs();
  try {
    const client = new OpenAI({ baseURL: `${lab.url}/v1`, apiKey: "unused-on-loopback", maxRetries: 0 });
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    assert.ok(ids.includes("tiny-qwen2") && ids.includes("tiny-gpt2"), ids.join(", "));
    assert.deepEqual(
      await client.models.retrieve("tiny-gpt2"),
      models.data.find((m) => m.id === "tiny-gpt2"),
    );
    await assert.rejects(
      client.models.retrieve("no-such-model"),
      (err: unknown) =>
        err instanceof OpenAI.NotFoundError && /model "no-such-model" does not exist/.test(err.message),
    );
    // Adapter ids hold a slash, which a client may send encoded or not.
    for (const path of ["tiny-gpt2:run-9%2Fadapter", "tiny-gpt2:run-9/adapter"]) {
      const missing = await fetch(`${lab.url}/v1/models/${path}`);
      assert.equal(missing.status, 404);
      assert.match((await missing.json()).error.message, /model "tiny-gpt2:run-9\/adapter" does not exist/);
    }

    const completion = await client.chat.completions.create({
      model: "tiny-gpt2",
      messages: [{ role: "user", content: PROMPT }],
      max_tokens: 6,
      temperature: 0,
    });
    assert.equal(completion.object, "chat.completion");
    assert.equal(completion.model, "tiny-gpt2");
    const answer = completion.choices[0].message.content ?? "";
    assert.equal(completion.choices[0].message.role, "assistant");
    assert.ok(["stop", "length"].includes(completion.choices[0].finish_reason));
    assert.ok(completion.usage!.completion_tokens >= 1 && completion.usage!.completion_tokens <= 6);
    assert.equal(
      completion.usage!.total_tokens,
      completion.usage!.prompt_tokens + completion.usage!.completion_tokens,
    );

    const stream = await client.chat.completions.create({
      model: "tiny-gpt2",
      messages: [{ role: "user", content: PROMPT }],
      max_tokens: 6,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let streamed = "";
    let finish: string | null = null;
    let usage = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, "chat.completion.chunk");
      streamed += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.equal(streamed, answer, "greedy: the stream says what the plain call said");
    assert.ok(finish === "stop" || finish === "length");
    assert.equal(usage!.completion_tokens, completion.usage!.completion_tokens);

    // A stop string is cut from the answer, as OpenAI does.
    if (answer.length > 2) {
      const cut = answer.slice(1, 3);
      const stopped = await client.chat.completions.create({
        model: "tiny-gpt2",
        messages: [{ role: "user", content: PROMPT }],
        max_tokens: 6,
        temperature: 0,
        stop: [cut],
      });
      assert.equal(stopped.choices[0].message.content, answer.slice(0, answer.indexOf(cut)));
      assert.equal(stopped.choices[0].finish_reason, "stop");
    }

    await assert.rejects(
      client.chat.completions.create({
        model: "tiny-gpt2",
        messages: [{ role: "user", content: "слово ".repeat(400) }],
        max_tokens: 8,
      }),
      (err: unknown) =>
        err instanceof OpenAI.BadRequestError && err.code === "context_length_exceeded" &&
        /context is 512 tokens/.test(err.message),
    );
    const bad = await postJson(`${lab.url}/v1/chat/completions`, {
      model: "tiny-gpt2",
      messages: [{ role: "user", content: "hi" }],
      temperature: "hot",
    });
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), {
      error: {
        message: "temperature must be a number",
        type: "invalid_request_error",
        param: "temperature",
        code: null,
      },
    });
    const noModel = await postJson(`${lab.url}/v1/chat/completions`, {
      model: "tiny-gpt2:run-9/adapter",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(noModel.status, 404);
    const noModelError = (await noModel.json()).error;
    assert.match(noModelError.message, /adapter "run-9\/adapter" is not found/);
    assert.equal(noModelError.code, "model_not_found");
    await assert.rejects(
      client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] }),
      (err: unknown) =>
        err instanceof OpenAI.NotFoundError && /model "no-such-model" is not found/.test(err.message),
    );
  } finally {
    await lab.close();
  }
});
