/**
 * The runs API:
 *   GET  /api/runs                 → { runs: RunListEntry[] } (newest first)
 *   POST /api/runs                 { kind, config, name? } → 201 RunRecord (queued)
 *   GET  /api/runs/:id             → RunRecord
 *   POST /api/runs/:id/cancel      → RunRecord (a running run is marked cancelled when its job returns)
 *   POST /api/runs/:id/resume      → RunRecord (re-queued with resume: true)
 *   GET  /api/runs/:id/metrics     → { metrics: MetricRow[], samples: SampleRow[] }
 *   GET  /api/runs/:id/events      → SSE: stored events after Last-Event-ID (or ?after=), then live
 *   GET  /api/job-kinds            → { kinds: string[] }
 */
import { BadRequestError, readJsonObject, rejectUnknownFields, runIdParam } from "../../lib/server/http.ts";
import type { LabRoutes } from "../../lib/server/routes.ts";
import { resumeAfterId, runEventStream } from "../../lib/server/sse.ts";
import type { JsonObject } from "../../lib/store/mod.ts";

const CREATE_FIELDS = ["kind", "config", "name"] as const;

export default function routes({ app, lab }: LabRoutes) {
  app.get("/api/job-kinds", (c) => c.json({ kinds: lab.queue.kinds.names() }));

  app.get("/api/runs", (c) => c.json({ runs: lab.store.listRuns() }));

  app.post("/api/runs", async (c) => {
    const body = await readJsonObject(c);
    rejectUnknownFields(body, CREATE_FIELDS);
    if (typeof body.kind !== "string" || body.kind === "") {
      throw new BadRequestError(
        `kind must be the name of a job kind (${lab.queue.kinds.names().join(", ")})`,
      );
    }
    const config = body.config;
    if (typeof config !== "object" || config === null || Array.isArray(config)) {
      throw new BadRequestError("config must be a JSON object");
    }
    if (
      body.name !== undefined &&
      (typeof body.name !== "string" || body.name.trim() === "" || body.name.length > 200)
    ) {
      throw new BadRequestError("name must be a non-empty string of at most 200 characters");
    }
    const run = lab.queue.submit(body.kind, config as JsonObject, body.name?.trim());
    return c.json(run, 201);
  });

  app.get("/api/runs/:id", (c) => c.json(lab.store.requireRun(runIdParam(c.req.param("id")))));

  app.post("/api/runs/:id/cancel", (c) => c.json(lab.queue.cancel(runIdParam(c.req.param("id")))));

  app.post("/api/runs/:id/resume", (c) => c.json(lab.queue.resume(runIdParam(c.req.param("id")))));

  app.get("/api/runs/:id/metrics", (c) => {
    const id = lab.store.requireRun(runIdParam(c.req.param("id"))).id;
    return c.json({ metrics: lab.store.metrics(id), samples: lab.store.samples(id) });
  });

  app.get("/api/runs/:id/events", (c) => {
    const id = lab.store.requireRun(runIdParam(c.req.param("id"))).id;
    const afterId = resumeAfterId(c.req.header("last-event-id"), c.req.query("after"));
    return runEventStream(lab.store, id, { afterId, closed: lab.closing });
  });
}
