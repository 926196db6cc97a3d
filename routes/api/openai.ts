/**
 * OpenAI-compatible endpoints (the official `openai` client works with baseURL `<lab>/v1`):
 *   GET  /v1/models            → { object: "list", data: [{ id, object: "model", created, owned_by }] }
 *   GET  /v1/models/{id}       → one of them ("base:adapter" ids hold slashes, sent encoded or not)
 *   POST /v1/chat/completions  → chat.completion, or with `stream: true` SSE chunks ending in `data: [DONE]`
 * Errors are OpenAI's `{"error": {message, type, param, code}}`; bad input is a 400, an unknown model a 404.
 */
import {
  chatCompletion,
  chunkFrames,
  completionId,
  modelCards,
  OpenAIError,
  parseChatRequest,
  toOpenAIError,
} from "../../lib/lab/openai.ts";
import { inferenceFor } from "../../lib/lab/inference.ts";
import { streamGeneration } from "../../lib/lab/stream.ts";
import { readJsonObject } from "../../lib/server/http.ts";
import type { LabRoutes } from "../../lib/server/routes.ts";

export default function routes({ app, lab }: LabRoutes) {
  app.get("/v1/models", async (c) => c.json({ object: "list", data: await modelCards(lab.roots) }));

  app.get("/v1/models/:id{.+}", async (c) => {
    const id = c.req.param("id");
    const card = (await modelCards(lab.roots)).find((m) => m.id === id);
    if (card) return c.json(card);
    const message = `model "${id}" does not exist: list the models with GET /v1/models`;
    const error = new OpenAIError(message, 404, "invalid_request_error", "model", "model_not_found");
    return c.json(error.toJSON(), error.status);
  });

  app.post("/v1/chat/completions", async (c) => {
    try {
      const request = parseChatRequest(await readJsonObject(c));
      const id = completionId();
      const created = Math.floor(Date.now() / 1000);
      const service = inferenceFor(lab);
      if (request.stream) {
        return await streamGeneration(
          service,
          request.generation,
          chunkFrames(id, request.modelId, created, request.includeUsage),
        );
      }
      const result = await service.generate({ ...request.generation, signal: c.req.raw.signal });
      return c.json(chatCompletion(id, request.modelId, created, result));
    } catch (err) {
      const error = toOpenAIError(err);
      if (error.status === 500) console.error("POST /v1/chat/completions failed:", err);
      return c.json(error.toJSON(), error.status);
    }
  });
}
