/** GET /api/system: the WebGPU adapter in use and the GPU memory figures now. */
import type { LabRoutes } from "../../lib/server/routes.ts";

export default function routes({ app, lab }: LabRoutes) {
  app.get("/api/system", (c) => c.json({ adapter: lab.adapter, memory: lab.memory.stats() }));
}
