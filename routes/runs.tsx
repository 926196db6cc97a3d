/** The Runs list and the Run page (live charts, progress, log, samples, cancel/resume). */
import RunsTable from "../islands/RunsTable.tsx";
import RunView from "../islands/RunView.tsx";
import { runIdParam } from "../lib/server/http.ts";
import type { LabRoutes } from "../lib/server/routes.ts";
import { Island } from "../lib/server/render.tsx";

export const nav = { label: "Runs", href: "/runs", order: 10 };

export default function routes({ app, lab, page }: LabRoutes) {
  app.get(
    "/runs",
    (c) => page(c, "Runs", <Island of={RunsTable} props={{ initial: lab.store.listRuns(), pollMs: 2000 }} />),
  );

  app.get("/runs/:id", (c) => {
    const id = runIdParam(c.req.param("id"));
    const run = lab.store.requireRun(id);
    // Everything up to afterId is rendered now; the island's stream continues after it.
    const afterId = lab.store.lastEventId(id);
    const props = {
      run,
      metrics: lab.store.metrics(id),
      samples: lab.store.samples(id),
      logTail: lab.store.logTail(id, 200),
      afterId,
    };
    return page(c, `Run ${run.id}: ${run.name}`, <Island of={RunView} props={props} />);
  });
}
