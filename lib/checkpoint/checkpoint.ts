/**
 * One view over the weight files of a Hugging Face model (or PEFT adapter) folder, whatever their format:
 * model.safetensors, sharded safetensors with model.safetensors.index.json, pytorch_model.bin (also sharded
 * with pytorch_model.bin.index.json), adapter_model.safetensors / adapter_model.bin.
 */
import type { HostTensor } from "./dtypes.ts";
import { joinPath, splitPath } from "./file_io.ts";
import { type ReadOptions, SafetensorsFile, type TensorInfo } from "./safetensors.ts";
import { TorchBinFile } from "./torch_bin.ts";

export type CheckpointFormat = "safetensors" | "pytorch";

/** Weight files, looked for in this order; an index (sharded) wins over a single file of the same format. */
const CANDIDATES: { file: string; format: CheckpointFormat; index: boolean }[] = [
  { file: "model.safetensors.index.json", format: "safetensors", index: true },
  { file: "model.safetensors", format: "safetensors", index: false },
  { file: "pytorch_model.bin.index.json", format: "pytorch", index: true },
  { file: "pytorch_model.bin", format: "pytorch", index: false },
  { file: "adapter_model.safetensors", format: "safetensors", index: false },
  { file: "adapter_model.bin", format: "pytorch", index: false },
];

interface TensorFile {
  readonly path: string;
  names(): string[];
  info(name: string): TensorInfo;
  read(name: string, options?: ReadOptions): Promise<HostTensor>;
  close(): void;
}

/** The tensors of a checkpoint, read on demand one at a time. Call close() when done. */
export class Checkpoint {
  /** The folder (or, when a file was opened directly, the file's folder). */
  readonly dir: string;
  readonly format: CheckpointFormat;
  /** Paths of the weight files (and the index, when sharded), in the order read. */
  readonly files: string[];
  /** safetensors `__metadata__` of the first file, or the index's `metadata`. */
  readonly metadata: Record<string, unknown>;
  #owner: Map<string, TensorFile>;
  #opened: TensorFile[];

  constructor(
    dir: string,
    format: CheckpointFormat,
    files: string[],
    metadata: Record<string, unknown>,
    owner: Map<string, TensorFile>,
    opened: TensorFile[],
  ) {
    this.dir = dir;
    this.format = format;
    this.files = files;
    this.metadata = metadata;
    this.#owner = owner;
    this.#opened = opened;
  }

  /** Tensor names, sorted. */
  names(): string[] {
    return [...this.#owner.keys()].sort();
  }

  has(name: string): boolean {
    return this.#owner.has(name);
  }

  #file(name: string): TensorFile {
    const file = this.#owner.get(name);
    if (!file) {
      throw new RangeError(
        `checkpoint ${this.dir}: no tensor named ${
          JSON.stringify(name)
        } (it has ${this.#owner.size} tensors; ` +
          "see names())",
      );
    }
    return file;
  }

  info(name: string): TensorInfo {
    return this.#file(name).info(name);
  }

  /**
   * Reads one tensor. `as: "f32"` (default) widens f16/bf16 to Float32Array; `as: "f16"` gives f16 bits in a
   * Uint16Array (f32/bf16 rounded to nearest even); `as: "raw"` keeps the stored dtype. Integer and bool
   * tensors always come back raw. `rows: [start, end)` reads part of the first dimension.
   */
  read(name: string, options?: ReadOptions): Promise<HostTensor> {
    return this.#file(name).read(name, options);
  }

  close(): void {
    for (const f of this.#opened) f.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function openFile(path: string, format: CheckpointFormat): Promise<TensorFile> {
  return format === "safetensors" ? await SafetensorsFile.open(path) : await TorchBinFile.open(path);
}

function formatOf(path: string): CheckpointFormat {
  return path.endsWith(".safetensors") || path.endsWith(".safetensors.index.json")
    ? "safetensors"
    : "pytorch";
}

async function openIndex(dir: string, indexPath: string, format: CheckpointFormat): Promise<Checkpoint> {
  let index: { metadata?: Record<string, unknown>; weight_map?: Record<string, unknown> };
  try {
    index = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (error) {
    throw new TypeError(`${indexPath}: cannot read the shard index (${(error as Error).message})`);
  }
  const weightMap = index?.weight_map;
  if (!weightMap || typeof weightMap !== "object") {
    throw new TypeError(`${indexPath}: missing "weight_map" object`);
  }
  const shardNames = [...new Set(Object.values(weightMap))];
  for (const shard of shardNames) {
    if (typeof shard !== "string" || shard.includes("/") || shard.includes("\\") || shard.startsWith(".")) {
      throw new TypeError(
        `${indexPath}: weight_map names shard ${JSON.stringify(shard)}; expected a file name`,
      );
    }
  }
  const opened: TensorFile[] = [];
  const owner = new Map<string, TensorFile>();
  try {
    const byShard = new Map<string, TensorFile>();
    for (const shard of shardNames as string[]) {
      const file = await openFile(joinPath(dir, shard), format);
      opened.push(file);
      byShard.set(shard, file);
    }
    for (const [name, shard] of Object.entries(weightMap)) {
      const file = byShard.get(shard as string)!;
      if (!file.names().includes(name)) {
        throw new RangeError(`${indexPath}: weight_map puts ${name} in ${shard}, which has no such tensor`);
      }
      owner.set(name, file);
    }
    for (const file of opened) {
      for (const name of file.names()) {
        if (!owner.has(name)) {
          throw new RangeError(`${file.path}: tensor ${name} is missing from the weight_map of ${indexPath}`);
        }
      }
    }
  } catch (error) {
    for (const f of opened) f.close();
    throw error;
  }
  const files = [indexPath, ...opened.map((f) => f.path)];
  return new Checkpoint(dir, format, files, index.metadata ?? {}, owner, opened);
}

async function openSingle(dir: string, path: string, format: CheckpointFormat): Promise<Checkpoint> {
  const file = await openFile(path, format);
  const owner = new Map<string, TensorFile>(file.names().map((n) => [n, file]));
  const metadata = file instanceof SafetensorsFile ? file.header.metadata : {};
  return new Checkpoint(dir, format, [path], metadata, owner, [file]);
}

/**
 * Opens the weights of a model folder (or a weight/index file given directly). Throws a TypeError naming
 * the folder and the file names looked for when none is present.
 */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new TypeError(`checkpoint ${path} does not exist`);
    throw error;
  }
  if (stat.isFile) {
    const { dir } = splitPath(path);
    const format = formatOf(path);
    return path.endsWith(".index.json") ? openIndex(dir, path, format) : openSingle(dir, path, format);
  }
  for (const candidate of CANDIDATES) {
    const candidatePath = joinPath(path, candidate.file);
    if (!(await exists(candidatePath))) continue;
    return candidate.index
      ? openIndex(path, candidatePath, candidate.format)
      : openSingle(path, candidatePath, candidate.format);
  }
  throw new TypeError(
    `checkpoint ${path}: no weights found; expected one of ${CANDIDATES.map((c) => c.file).join(", ")}`,
  );
}
