/**
 * Path confinement: every model, dataset and output path that comes from a request or a run config goes through
 * `confinePath` before the lab touches it, so neither `..` nor a symlink can reach outside the configured roots.
 */
import * as path from "node:path";

/** Thrown when a path resolves outside every configured root; the message names the path and the roots. */
export class PathOutsideRootsError extends RangeError {
  constructor(readonly requested: string, readonly roots: string[]) {
    super(
      `path "${requested}" is outside the allowed folders (${roots.join(", ")}): ` +
        `use a path inside one of them`,
    );
    this.name = "PathOutsideRootsError";
  }
}

/**
 * The real (symlink-free, absolute) form of `target`, which may not exist yet: the deepest existing ancestor is
 * resolved with realpath and the missing tail appended, so an output folder still to be created is confined too.
 */
function realpathAllowingMissing(target: string): string {
  const missing: string[] = [];
  let current = target;
  while (true) {
    try {
      const real = Deno.realPathSync(current);
      return missing.length === 0 ? real : path.join(real, ...missing.reverse());
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      const parent = path.dirname(current);
      if (parent === current) throw err;
      missing.push(path.basename(current));
      current = parent;
    }
  }
}

function isWithin(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === "" || (!relative.startsWith("..") && !path.isAbsolute(relative));
}

/**
 * Resolves `requested` (relative paths against the working directory, as the CLI does) to its real path and
 * returns it if it lies inside one of `roots` (themselves resolved through realpath); otherwise throws
 * PathOutsideRootsError. Callers must use the returned path, not the requested one: it is the checked one.
 */
export function confinePath(roots: string[], requested: string): string {
  if (typeof requested !== "string" || requested === "") {
    throw new TypeError(`path must be a non-empty string, got ${JSON.stringify(requested)}`);
  }
  if (requested.includes("\0")) throw new TypeError(`path "${requested}" contains a NUL byte`);
  if (roots.length === 0) throw new RangeError(`no allowed folders are configured for path "${requested}"`);
  const real = realpathAllowingMissing(path.resolve(requested));
  for (const root of roots) {
    if (isWithin(realpathAllowingMissing(path.resolve(root)), real)) return real;
  }
  throw new PathOutsideRootsError(requested, roots);
}

/** The folders a lab may read models and datasets from and write outputs to. */
export interface LabRoots {
  models: string[];
  datasets: string[];
  outputs: string[];
}

/** The project root (the folder holding deno.json). */
export const PROJECT_ROOT: string = path.resolve(import.meta.dirname!, "..");

/** The lab's data folder: env OSTROTA_HOME, default `.ostrota/` in the project root. */
export function labHome(env: { get(name: string): string | undefined } = Deno.env): string {
  return path.resolve(env.get("OSTROTA_HOME") || path.join(PROJECT_ROOT, ".ostrota"));
}

function rootList(value: string | undefined, defaults: string[]): string[] {
  if (!value) return defaults;
  return value.split(path.delimiter).filter((entry) => entry !== "").map((entry) => path.resolve(entry));
}

/**
 * The configured roots. Env OSTROTA_MODEL_ROOTS, OSTROTA_DATA_ROOTS and OSTROTA_OUTPUT_ROOTS (lists separated
 * by the platform's path delimiter, `:` on Linux) replace the defaults: models under `<home>/models`, datasets
 * in the project's `data/` and `<home>/datasets`, outputs under `<home>/runs`.
 */
export function labRoots(home: string, env: { get(name: string): string | undefined } = Deno.env): LabRoots {
  return {
    models: rootList(env.get("OSTROTA_MODEL_ROOTS"), [path.join(home, "models")]),
    datasets: rootList(env.get("OSTROTA_DATA_ROOTS"), [
      path.join(PROJECT_ROOT, "data"),
      path.join(home, "datasets"),
    ]),
    outputs: rootList(env.get("OSTROTA_OUTPUT_ROOTS"), [path.join(home, "runs")]),
  };
}
