/**
 * What the lab can train, evaluate and serve: the built-in tiny models, model folders (config.json) and PEFT
 * adapter folders (adapter_config.json) under the configured roots, and dataset files. Every name a request
 * gives is resolved here, through `confinePath`, so nothing outside the roots is ever opened.
 */
import * as path from "node:path";
import { loadModelConfig, type ModelConfig } from "../checkpoint/mod.ts";
import { BUILTIN_MODELS, resolveModel, SAMPLE_DATASET } from "../cli/resolve.ts";
import { readAdapterConfig } from "../lora/peft.ts";
import { checkpointLayout, preset } from "../models/presets.ts";
import { confinePath, labHome, type LabRoots } from "../paths.ts";

/** The dataset name that stands for the shipped sample (data/anekdots_sample.jsonl). */
export const SAMPLE_DATASET_NAME = "sample";
const DATASET_EXTENSIONS = [".jsonl", ".json", ".parquet", ".csv"];
/** Folders holding training state, not models: never listed. */
const SKIPPED_FOLDERS = new Set(["checkpoints", "islands", "node_modules"]);
/** How deep under a root the scan looks (root/run-3/adapter is depth 2). */
const SCAN_DEPTH = 3;

/** What the Models page and the pickers show of a model's config.json. */
export interface ModelSummary {
  architecture: string;
  parameters: number;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  maxPositions: number;
  dtype: string;
  tiedEmbeddings: boolean;
}

export interface ModelEntry {
  /** The name requests use: a built-in name, or the folder's path relative to its root. */
  id: string;
  /** The folder (null for a built-in not created yet: it is written on first use). */
  path: string | null;
  builtin: boolean;
  summary: ModelSummary;
}

export interface AdapterEntry {
  /** The folder's path relative to its root (e.g. "run-3/adapter"). */
  id: string;
  path: string;
  /** The base model's id when the adapter names a base the catalog knows, else its recorded base path. */
  base: string | null;
  r: number;
  alpha: number;
  targetModules: string[];
}

export interface DatasetEntry {
  /** "sample" or the file's path relative to its root. */
  id: string;
  path: string;
  bytes: number;
}

export interface Catalog {
  models: ModelEntry[];
  adapters: AdapterEntry[];
  datasets: DatasetEntry[];
}

export function summarizeConfig(config: ModelConfig): ModelSummary {
  const parameters = checkpointLayout(config).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  if (config.architecture === "qwen2") {
    return {
      architecture: "qwen2",
      parameters,
      layers: config.numLayers,
      hidden: config.hiddenSize,
      heads: config.numHeads,
      kvHeads: config.numKvHeads,
      vocab: config.vocabSize,
      maxPositions: config.maxPositions,
      dtype: config.dtype,
      tiedEmbeddings: config.tieWordEmbeddings,
    };
  }
  return {
    architecture: "gpt2",
    parameters,
    layers: config.nLayer,
    hidden: config.nEmbd,
    heads: config.nHead,
    kvHeads: config.nHead,
    vocab: config.vocabSize,
    maxPositions: config.nPositions,
    dtype: config.dtype,
    tiedEmbeddings: true,
  };
}

/** Where the built-in models live once created (resolveModel writes them there on first use). */
function builtinDir(name: string): string {
  return path.join(labHome(), "models", name);
}

async function exists(file: string): Promise<boolean> {
  try {
    await Deno.stat(file);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Folders under `root` (depth-limited, symlinks not followed) that contain `marker`. */
async function foldersWith(root: string, marker: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) return;
      throw err;
    }
    if (entries.some((e) => e.isFile && e.name === marker)) found.push(dir);
    if (depth >= SCAN_DEPTH) return;
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      // Half-written folders (`.partial-`, `.tmp-`) are renamed into place when complete: skip them until then.
      if (!entry.isDirectory || entry.name.startsWith(".") || SKIPPED_FOLDERS.has(entry.name)) continue;
      if (entry.name.includes(".partial-") || entry.name.includes(".tmp-")) continue;
      await walk(path.join(dir, entry.name), depth + 1);
    }
  };
  await walk(root, 0);
  return found;
}

/** Roots a model may be read from: the model roots and the output roots (trained and merged models). */
export function modelRoots(roots: LabRoots): string[] {
  return [...roots.models, ...roots.outputs];
}

function relativeId(roots: string[], dir: string): string {
  for (const root of roots) {
    const relative = path.relative(root, dir);
    if (relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative)) return relative;
  }
  return dir;
}

async function realRoots(roots: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const root of roots) {
    try {
      out.push(await Deno.realPath(root));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return out;
}

export async function listModels(roots: LabRoots): Promise<ModelEntry[]> {
  const entries: ModelEntry[] = [];
  const seen = new Set<string>();
  for (const name of BUILTIN_MODELS) {
    const dir = builtinDir(name);
    const created = await exists(path.join(dir, "config.json"));
    const real = created ? await Deno.realPath(dir) : null;
    if (real) seen.add(real);
    entries.push({ id: name, path: real, builtin: true, summary: summarizeConfig(preset(name)) });
  }
  const rootsReal = await realRoots(modelRoots(roots));
  for (const root of rootsReal) {
    for (const dir of await foldersWith(root, "config.json")) {
      if (seen.has(dir)) continue;
      seen.add(dir);
      let config: ModelConfig;
      try {
        config = await loadModelConfig(dir);
      } catch {
        // A config.json of an architecture the lab cannot load is not a model it can offer.
        continue;
      }
      entries.push({
        id: relativeId(rootsReal, dir),
        path: dir,
        builtin: false,
        summary: summarizeConfig(config),
      });
    }
  }
  return entries;
}

export async function listAdapters(roots: LabRoots, models?: ModelEntry[]): Promise<AdapterEntry[]> {
  const known = models ?? await listModels(roots);
  const byPath = new Map(known.filter((m) => m.path).map((m) => [m.path!, m.id]));
  const rootsReal = await realRoots(modelRoots(roots));
  const entries: AdapterEntry[] = [];
  for (const root of rootsReal) {
    for (const dir of await foldersWith(root, "adapter_config.json")) {
      let config;
      try {
        config = await readAdapterConfig(dir);
      } catch {
        continue;
      }
      let base: string | null = config.baseModel ?? null;
      if (base !== null) {
        const real = await Deno.realPath(base).catch(() => null);
        base = (real && byPath.get(real)) ?? base;
      }
      entries.push({
        id: relativeId(rootsReal, dir),
        path: dir,
        base,
        r: config.r,
        alpha: config.alpha,
        targetModules: config.targetModules,
      });
    }
  }
  return entries;
}

export async function listDatasets(roots: LabRoots): Promise<DatasetEntry[]> {
  const entries: DatasetEntry[] = [{
    id: SAMPLE_DATASET_NAME,
    path: SAMPLE_DATASET,
    bytes: (await Deno.stat(SAMPLE_DATASET)).size,
  }];
  const rootsReal = await realRoots(roots.datasets);
  const seen = new Set([await Deno.realPath(SAMPLE_DATASET)]);
  for (const root of rootsReal) {
    const walk = async (dir: string, depth: number) => {
      for await (const entry of Deno.readDir(dir)) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory && depth < 2 && !entry.name.startsWith(".")) await walk(full, depth + 1);
        else if (entry.isFile && DATASET_EXTENSIONS.includes(path.extname(entry.name)) && !seen.has(full)) {
          seen.add(full);
          entries.push({ id: relativeId(rootsReal, full), path: full, bytes: (await Deno.stat(full)).size });
        }
      }
    };
    await walk(root, 0);
  }
  return entries;
}

export async function catalog(roots: LabRoots): Promise<Catalog> {
  const models = await listModels(roots);
  return { models, adapters: await listAdapters(roots, models), datasets: await listDatasets(roots) };
}

/** A model, adapter or dataset name that none of the lab's roots holds. */
export class NotInCatalogError extends TypeError {
  constructor(readonly what: string, readonly missing: string, roots: string[]) {
    super(`${what} "${missing}" is not found under ${roots.join(", ")}: pick one from GET /api/catalog`);
    this.name = "NotInCatalogError";
  }
}

/** A relative name is looked up under each root in turn; an absolute one is confined as it is. */
function confineName(roots: string[], name: string, what: string, marker: string | null): string {
  if (typeof name !== "string" || name.trim() === "") {
    throw new TypeError(`${what} must be a non-empty string (a name from the lab's lists, or a path)`);
  }
  if (path.isAbsolute(name)) return confinePath(roots, name);
  for (const root of roots) {
    const candidate = path.join(root, name);
    try {
      Deno.statSync(marker ? path.join(candidate, marker) : candidate);
    } catch {
      continue;
    }
    return confinePath(roots, candidate);
  }
  throw new NotInCatalogError(what, name, roots);
}

/**
 * The checked folder of a model name (sync, for validators): a built-in name stays itself (it is created on
 * first use by `modelDir`), anything else must be a model folder inside the model or output roots.
 */
export function confineModel(roots: LabRoots, name: string, what = "model"): string {
  if (BUILTIN_MODELS.includes(name)) return name;
  const builtin = typeof name === "string" && path.isAbsolute(name) ? builtinNamed(name) : null;
  if (builtin) return builtin;
  const dir = confineName(modelRoots(roots), name, what, null);
  try {
    Deno.statSync(path.join(dir, "config.json"));
  } catch {
    throw new TypeError(`${what} "${name}" has no config.json: give a Hugging Face model folder`);
  }
  return dir;
}

/** The built-in whose folder `dir` is (adapters record their base as a path), or null. */
function builtinNamed(dir: string): string | null {
  let real: string;
  try {
    real = Deno.realPathSync(dir);
  } catch {
    return null;
  }
  for (const name of BUILTIN_MODELS) {
    try {
      if (Deno.realPathSync(builtinDir(name)) === real) return name;
    } catch {
      // Not created yet: nothing can point at it.
    }
  }
  return null;
}

/** The folder of a model name, creating a built-in on first use. */
export async function modelDir(roots: LabRoots, name: string, what = "model"): Promise<string> {
  const confined = confineModel(roots, name, what);
  return BUILTIN_MODELS.includes(confined) ? await resolveModel(confined) : confined;
}

/** The checked folder of a PEFT adapter name. */
export function confineAdapter(roots: LabRoots, name: string, what = "adapter"): string {
  const dir = confineName(modelRoots(roots), name, what, null);
  try {
    Deno.statSync(path.join(dir, "adapter_config.json"));
  } catch {
    throw new TypeError(`${what} "${name}" has no adapter_config.json: give a PEFT adapter folder`);
  }
  return dir;
}

/** The checked file of a dataset name ("sample", a name from the list, or a path in the dataset roots). */
export function confineDataset(roots: LabRoots, name: string, what = "dataset"): string {
  if (name === SAMPLE_DATASET_NAME) return SAMPLE_DATASET;
  if (typeof name === "string" && path.isAbsolute(name) && path.resolve(name) === SAMPLE_DATASET) {
    return SAMPLE_DATASET;
  }
  return confineName(roots.datasets, name, what, null);
}
