/** The Playground page: two generations side by side, streamed token by token. */
import Playground, { type SideChoice } from "../islands/Playground.tsx";
import { catalog } from "../lib/lab/catalog.ts";
import type { LabRoutes } from "../lib/server/routes.ts";
import { Island } from "../lib/server/render.tsx";

export const nav = { label: "Playground", href: "/playground", order: 30 };

export default function routes({ app, lab, page }: LabRoutes) {
  app.get("/playground", async (c) => {
    const { models, adapters } = await catalog(lab.roots);
    const ids = models.map((m) => m.id);
    // Left: a base model; right: the newest adapter on its base (or the other built-in when there is none).
    const adapter = adapters.findLast((a) => a.base !== null && ids.includes(a.base));
    const left: SideChoice = { model: adapter?.base ?? "tiny-qwen2", adapter: null, adapterOn: false };
    const right: SideChoice = adapter
      ? { model: adapter.base!, adapter: adapter.id, adapterOn: true }
      : { model: "tiny-gpt2", adapter: null, adapterOn: false };
    const props = { models: ids, adapters: adapters.map(({ id, base }) => ({ id, base })), left, right };
    return page(c, "Playground", <Island of={Playground} props={props} />);
  });
}
