/** The System page: the WebGPU adapter in use, its limits and features, and live GPU memory. */
import GpuMemory from "../islands/GpuMemory.tsx";
import type { LabRoutes } from "../lib/server/routes.ts";
import { Island } from "../lib/server/render.tsx";
import { AdapterFacts, AdapterFeatures, AdapterLimits } from "./_components/adapter.tsx";

export const nav = { label: "System", href: "/system", order: 60 };

export default function routes({ app, lab, page }: LabRoutes) {
  app.get("/system", (c) =>
    page(
      c,
      "System",
      <>
        <section>
          <h2>WebGPU adapter</h2>
          <AdapterFacts adapter={lab.adapter} />
        </section>
        <section>
          <h2>GPU memory</h2>
          <Island of={GpuMemory} props={{ initial: lab.memory.stats(), pollMs: 2000 }} />
        </section>
        <section>
          <h2>Limits</h2>
          <AdapterLimits adapter={lab.adapter} all />
        </section>
        <section>
          <h2>Features</h2>
          <AdapterFeatures adapter={lab.adapter} />
        </section>
        <section>
          <h2>Folders</h2>
          <dl class="facts">
            <dt>Models</dt>
            <dd>{lab.roots.models.join(", ")}</dd>
            <dt>Datasets</dt>
            <dd>{lab.roots.datasets.join(", ")}</dd>
            <dt>Outputs</dt>
            <dd>{lab.roots.outputs.join(", ")}</dd>
          </dl>
        </section>
      </>,
    ));
}
