/** The Models page: models and adapters under the configured roots with their config summary; export merged. */
import ExportMerged from "../islands/ExportMerged.tsx";
import { catalog } from "../lib/lab/catalog.ts";
import { inferenceFor } from "../lib/lab/inference.ts";
import type { LabRoutes } from "../lib/server/routes.ts";
import { Island } from "../lib/server/render.tsx";

export const nav = { label: "Models", href: "/models", order: 50 };

function millions(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} M`;
}

export default function routes({ app, lab, page }: LabRoutes) {
  app.get("/models", async (c) => {
    const { models, adapters } = await catalog(lab.roots);
    const loaded = new Set(inferenceFor(lab).loadedModels().map((m) => m.dir));
    return page(
      c,
      "Models",
      <>
        <section>
          <h2>Models</h2>
          <table class="models">
            <thead>
              <tr>
                <th>Name</th>
                <th>Architecture</th>
                <th class="num">Parameters</th>
                <th class="num">Layers</th>
                <th class="num">Width</th>
                <th class="num">Heads (KV)</th>
                <th class="num">Vocabulary</th>
                <th class="num">Context</th>
                <th>Weights</th>
                <th>Folder</th>
              </tr>
            </thead>
            <tbody>
              {models.map((m) => (
                <tr key={m.id} data-model={m.id}>
                  <td>
                    {m.id}
                    {m.builtin && <span class="muted">(built-in)</span>}
                    {m.path && loaded.has(m.path) && <span class="muted">· loaded</span>}
                  </td>
                  <td>{m.summary.architecture}</td>
                  <td class="num">{millions(m.summary.parameters)}</td>
                  <td class="num">{m.summary.layers}</td>
                  <td class="num">{m.summary.hidden}</td>
                  <td class="num">{m.summary.heads} ({m.summary.kvHeads})</td>
                  <td class="num">{m.summary.vocab}</td>
                  <td class="num">{m.summary.maxPositions}</td>
                  <td>{m.summary.dtype}{m.summary.tiedEmbeddings ? ", tied lm_head" : ""}</td>
                  <td>
                    <code>{m.path ?? "created on first use"}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section>
          <h2>Adapters</h2>
          {adapters.length === 0
            ? <p class="muted">No LoRA adapters yet: a QLoRA run writes one into its folder.</p>
            : (
              <table class="adapters">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Base</th>
                    <th class="num">r</th>
                    <th class="num">alpha</th>
                    <th>Target modules</th>
                    <th>Merge into the base</th>
                  </tr>
                </thead>
                <tbody>
                  {adapters.map((a) => (
                    <tr key={a.id} data-adapter={a.id}>
                      <td>
                        <code>{a.id}</code>
                      </td>
                      <td>{a.base ?? <span class="muted">unknown</span>}</td>
                      <td class="num">{a.r}</td>
                      <td class="num">{a.alpha}</td>
                      <td>{a.targetModules.join(", ")}</td>
                      <td>
                        <Island
                          of={ExportMerged}
                          props={{ adapter: a.id, base: models.some((m) => m.id === a.base) ? a.base : null }}
                        />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
        </section>
        <section>
          <h2>Folders</h2>
          <dl class="facts">
            <dt>Models</dt>
            <dd>{lab.roots.models.join(", ")}</dd>
            <dt>Outputs (trained, merged)</dt>
            <dd>{lab.roots.outputs.join(", ")}</dd>
          </dl>
          <p class="muted">
            Every model here is also served by the OpenAI-compatible API (<code>GET /v1/models</code>); an
            adapter is asked for as <code>base:adapter</code>.
          </p>
        </section>
      </>,
    );
  });
}
