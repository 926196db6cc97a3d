/**
 * Route modules. Every `routes/**.ts(x)` file (except `_`-prefixed files and folders, which hold shared
 * components) is a route module, found at start — adding a page is adding a file:
 *
 * ```tsx
 * import type { LabRoutes } from "../lib/server/routes.ts";
 * export const nav = { label: "Models", href: "/models", order: 50 };   // optional: a link in the layout
 * export default function routes({ app, lab, page }: LabRoutes) {
 *   app.get("/models", (c) => page(c, "Models", <ModelsView ... />));
 * }
 * ```
 *
 * Pages are thin: they read from `lab` (store, queue, adapter, memory, roots) and render; the logic is in lib/.
 */
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { VNode } from "preact";
import type { AdapterSummary } from "../../compute/gpu.ts";
import type { GpuMemory, JobQueue } from "../jobs/mod.ts";
import type { LabRoots } from "../paths.ts";
import { PROJECT_ROOT } from "../paths.ts";
import type { RunStore } from "../store/mod.ts";
import type { IslandBundle } from "./islands.ts";
import type { NavEntry } from "./render.tsx";

/** What the lab's routes are built from; `createApp` takes it, tests build it on a temp store. */
export interface LabDeps {
  store: RunStore;
  queue: JobQueue;
  /** The WebGPU adapter in use. */
  adapter: AdapterSummary;
  memory: GpuMemory;
  islands: IslandBundle;
  roots: LabRoots;
  /** The bearer token every request must carry, or null (loopback without OSTROTA_TOKEN). */
  token: string | null;
  /** Aborted when the lab shuts down: long-lived responses (SSE) end on it so the server can stop. */
  closing: AbortSignal;
}

/** Renders `body` inside the shared layout as an HTML response. */
export type PageRenderer = (
  c: Context,
  title: string,
  body: VNode,
  status?: ContentfulStatusCode,
) => Response;

export interface LabRoutes {
  app: Hono;
  lab: LabDeps;
  page: PageRenderer;
}

export interface RouteModule {
  default: (routes: LabRoutes) => void;
  nav?: NavEntry;
}

export const ROUTES_DIR: string = path.join(PROJECT_ROOT, "routes");

async function routeFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith("_") || entry.name.startsWith(".")) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory) files.push(...await routeFiles(full));
    else if (entry.isFile && /\.tsx?$/.test(entry.name)) files.push(full);
  }
  return files;
}

/** Imports every route module under `dir`, in path order (so registration order is stable). */
export async function loadRouteModules(
  dir: string = ROUTES_DIR,
): Promise<{ file: string; module: RouteModule }[]> {
  const files = (await routeFiles(dir)).sort();
  const modules: { file: string; module: RouteModule }[] = [];
  for (const file of files) {
    const module = await import(pathToFileURL(file).href) as Partial<RouteModule>;
    if (typeof module.default !== "function") {
      throw new TypeError(
        `route module ${
          path.relative(PROJECT_ROOT, file)
        } must export default a function ({ app, lab, page })`,
      );
    }
    modules.push({ file, module: module as RouteModule });
  }
  return modules;
}
