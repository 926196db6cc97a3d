/**
 * The lab's own API (pages and islands use it; logic in lib/lab):
 *   GET  /api/catalog                    → { models, adapters, datasets } under the configured roots
 *   POST /api/estimate                   { train config } → { memory, time } before launch
 *   GET  /api/compare?ids=3,5            → { runs: RunSummary[] }
 *   GET  /api/compare.csv?ids=3,5        → the comparison table as CSV (download)
 *   GET  /api/compare.md?ids=3,5         → the comparison report as Markdown (download)
 *   POST /api/playground/generate        { model, adapter, prompt, temperature, topP, topK, maxTokens, seed }
 *                                        → SSE: `token` {index, text} per token, then `done` (counts, tokens/s)
 *                                          or `error`; 400 before the stream when the prompt does not fit
 */
import { catalog } from "../../lib/lab/catalog.ts";
import { parseRunIds, renderReport, summaries } from "../../lib/lab/compare.ts";
import { estimateLaunch } from "../../lib/lab/estimate.ts";
import { inferenceFor } from "../../lib/lab/inference.ts";
import { streamGeneration } from "../../lib/lab/stream.ts";
import { BadRequestError, readJsonObject, rejectUnknownFields } from "../../lib/server/http.ts";
import type { LabRoutes } from "../../lib/server/routes.ts";
import type { JsonObject } from "../../lib/store/mod.ts";
import { asBadRequest } from "./_input.ts";

const PLAYGROUND_FIELDS = ["model", "adapter", "prompt", "temperature", "topP", "topK", "maxTokens", "seed"];

function stringField(body: JsonObject, name: string): string | null {
  const value = body[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") throw new BadRequestError(`${name} must be a string, got ${typeof value}`);
  return value;
}

function numberField(body: JsonObject, name: string, fallback: number): number {
  const value = body[name];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number") throw new BadRequestError(`${name} must be a number, got ${typeof value}`);
  return value;
}

export default function routes({ app, lab }: LabRoutes) {
  app.get("/api/catalog", async (c) => c.json(await catalog(lab.roots)));

  app.post("/api/estimate", async (c) => {
    const body = await readJsonObject(c);
    const hasF16 = lab.adapter.features.includes("shader-f16");
    return c.json(await asBadRequest(() => estimateLaunch(lab.store, lab.roots, hasF16, body)));
  });

  app.get(
    "/api/compare",
    (c) => c.json({ runs: summaries(lab.store, parseRunIds(c.req.queries("ids") ?? [])) }),
  );
  for (const format of ["csv", "md"] as const) {
    app.get(`/api/compare.${format}`, (c) => {
      const ids = parseRunIds(c.req.queries("ids") ?? []);
      const { body, type } = renderReport(summaries(lab.store, ids), format);
      c.header("Content-Type", type);
      c.header("Content-Disposition", `attachment; filename="ostrota-compare-${ids.join("-")}.${format}"`);
      return c.body(body);
    });
  }

  app.post("/api/playground/generate", async (c) => {
    const body = await readJsonObject(c);
    rejectUnknownFields(body, PLAYGROUND_FIELDS);
    const prompt = stringField(body, "prompt") ?? "";
    if (prompt.trim() === "") throw new BadRequestError("prompt must be a non-empty string");
    const model = stringField(body, "model");
    if (model === null) throw new BadRequestError("model must be given: a name from GET /api/catalog");
    const request = {
      model,
      adapter: stringField(body, "adapter"),
      messages: [{ role: "user" as const, content: prompt }],
      temperature: numberField(body, "temperature", 0.7),
      topP: numberField(body, "topP", 0.95),
      topK: numberField(body, "topK", 0),
      maxTokens: numberField(body, "maxTokens", 64),
      seed: numberField(body, "seed", 0),
      stop: [],
    };
    const frame = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    return await asBadRequest(() =>
      streamGeneration(inferenceFor(lab), request, {
        token: (e) => frame("token", e),
        done: (result) => frame("done", result),
        failed: (err) => frame("error", { message: err.message }),
      })
    );
  });
}
