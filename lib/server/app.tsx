/** The lab's HTTP app: security gate, static files, the island bundle, every route module, and error mapping. */
import * as path from "node:path";
import { type Context, Hono } from "hono";
import { InvalidConfigError, RunStateError, UnknownJobKindError } from "../jobs/mod.ts";
import { PathOutsideRootsError, PROJECT_ROOT } from "../paths.ts";
import { RunNotFoundError } from "../store/mod.ts";
import { guardOrigin, requireToken } from "./auth.ts";
import { BadRequestError, BodyTooLargeError } from "./http.ts";
import { type NavEntry, renderDocument } from "./render.tsx";
import { type LabDeps, loadRouteModules, type PageRenderer, ROUTES_DIR } from "./routes.ts";

const STATIC_DIR = path.join(PROJECT_ROOT, "static");
/** Files served under /static/ from outside static/ (vendor CSS). */
const VENDOR_FILES: Record<string, string> = {
  "uplot.min.css": path.join(PROJECT_ROOT, "node_modules", "uplot", "dist", "uPlot.min.css"),
};
const CONTENT_TYPES: Record<string, string> = {
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

function statusOf(err: unknown): 400 | 404 | 409 | 413 | 500 {
  if (err instanceof BodyTooLargeError) return 413;
  if (err instanceof RunNotFoundError) return 404;
  if (err instanceof RunStateError) return 409;
  if (
    err instanceof BadRequestError || err instanceof UnknownJobKindError ||
    err instanceof InvalidConfigError ||
    err instanceof PathOutsideRootsError
  ) return 400;
  return 500;
}

export interface CreateAppOptions {
  /** The folder of route modules (default: the project's routes/). */
  routesDir?: string;
}

/** Builds the app; tests serve it on port 0 with `Deno.serve({ port: 0 }, app.fetch)`. */
export async function createApp(lab: LabDeps, options: CreateAppOptions = {}): Promise<Hono> {
  const app = new Hono();
  const modules = await loadRouteModules(options.routesDir ?? ROUTES_DIR);
  const nav: NavEntry[] = modules.flatMap(({ module }) => (module.nav ? [module.nav] : []))
    .sort((a, b) => a.order - b.order);

  const page: PageRenderer = (c, title, body, status = 200) =>
    c.html(
      renderDocument({ title, nav, current: c.req.path, islandsUrl: lab.islands.url, children: body }),
      status,
    );

  app.use("*", async (c, next) => {
    await next();
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    c.header("X-Frame-Options", "DENY");
  });
  app.use("*", guardOrigin(lab.token === null));
  if (lab.token !== null) app.use("*", requireToken(lab.token));

  app.get("/static/:file", async (c) => {
    const file = c.req.param("file");
    const source = VENDOR_FILES[file] ??
      (/^[\w-]+(\.[\w-]+)*$/.test(file) ? path.join(STATIC_DIR, file) : null);
    if (source === null) return c.notFound();
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(source);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return c.notFound();
      throw err;
    }
    c.header("Content-Type", CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream");
    c.header("Cache-Control", "no-cache");
    return c.body(bytes as Uint8Array<ArrayBuffer>);
  });
  app.get(lab.islands.url, (c) => {
    // The URL carries the bundle's content hash: a changed bundle gets a new URL, so this one never changes.
    c.header("Content-Type", "text/javascript; charset=utf-8");
    c.header("Cache-Control", "public, max-age=31536000, immutable");
    return c.body(lab.islands.code);
  });

  for (const { module } of modules) module.default({ app, lab, page });

  const isApi = (c: Context) => c.req.path.startsWith("/api/") || c.req.path.startsWith("/v1/");
  app.notFound((c) => {
    if (isApi(c)) return c.json({ error: `no endpoint ${c.req.method} ${c.req.path}` }, 404);
    return page(c, "Not found", <p>There is no page at {c.req.path}.</p>, 404);
  });
  app.onError((err, c) => {
    const status = statusOf(err);
    if (status === 500) console.error(`${c.req.method} ${c.req.path} failed:`, err);
    const message = status === 500 ? `internal error: ${err.message}` : err.message;
    if (isApi(c)) return c.json({ error: message }, status);
    return page(c, status === 404 ? "Not found" : "Error", <p>{message}</p>, status);
  });
  return app;
}
