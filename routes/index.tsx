/** The landing page: the adapter in use, GPU memory, and the latest runs. */
import GpuMemory from "../islands/GpuMemory.tsx";
import RunsTable from "../islands/RunsTable.tsx";
import type { LabRoutes } from "../lib/server/routes.ts";
import { Island } from "../lib/server/render.tsx";
import { AdapterFacts, AdapterLimits } from "./_components/adapter.tsx";

export default function routes({ app, lab, page }: LabRoutes) {
  app.get("/", (c) =>
    page(
      c,
      "Ostrota lab",
      <>
        <div class="columns">
          <section>
            <h2>WebGPU adapter</h2>
            <AdapterFacts adapter={lab.adapter} />
            <AdapterLimits adapter={lab.adapter} all={false} />
            <p>
              <a href="/system">All limits and features</a>
            </p>
          </section>
          <section>
            <h2>GPU memory</h2>
            <Island of={GpuMemory} props={{ initial: lab.memory.stats(), pollMs: 2000 }} />
          </section>
        </div>
        <section>
          <h2>Latest runs</h2>
          <Island of={RunsTable} props={{ initial: lab.store.listRuns(10), pollMs: 2000 }} />
        </section>
      </>,
    ));
}
