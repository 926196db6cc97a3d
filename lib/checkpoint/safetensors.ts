/**
 * safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
 * a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {..}}`, then the
 * tensor bytes. The header is validated the way the reference implementation does (offsets in bounds,
 * contiguous and non-overlapping, sizes = numel * dtype size); tensor bytes are read one tensor at a time.
 */
import {
  convertFloat,
  DType,
  DTYPE_BYTES,
  f32ToBf16,
  f32ToF16,
  HostData,
  HostTensor,
  numel,
  SAFETENSORS_DTYPES,
  toSafetensorsDType,
  viewBytes,
} from "./dtypes.ts";
import { RangeReader, writeAll, writeFileAtomic, writeTextFileAtomic } from "./file_io.ts";

/** The reference implementation refuses headers above 100 MB. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  dtype: DType;
  shape: number[];
}

/** Where a tensor's bytes are, relative to the start of the file. */
export interface TensorEntry extends TensorInfo {
  name: string;
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  /** Byte offset of the data section (8 + header length). */
  dataOffset: number;
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

/** How a floating tensor comes back from `read`: "f32" (default), "f16" bits, or the stored dtype ("raw"). */
export type ReadAs = "f32" | "f16" | "raw";

export interface ReadOptions {
  as?: ReadAs;
  /** Reads rows [start, end) of the first dimension only, e.g. to quantize a huge matrix piece by piece. */
  rows?: [number, number];
}

function fail(path: string, what: string): never {
  throw new RangeError(`${path}: invalid safetensors header: ${what}`);
}

/** Parses and validates a header; `fileSize` is the size of the whole file. */
export function parseSafetensorsHeader(
  path: string,
  headerBytes: Uint8Array,
  fileSize: number,
): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (error) {
    fail(path, `header is not UTF-8 JSON (${(error as Error).message})`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    fail(path, "header is not a JSON object");
  }
  const dataOffset = 8 + headerBytes.length;
  const dataLength = fileSize - dataOffset;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        fail(path, "__metadata__ must be an object of strings");
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") fail(path, `__metadata__.${k} must be a string, got ${JSON.stringify(v)}`);
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (entry === null || typeof entry !== "object") fail(path, `tensor ${name} is not an object`);
    const dtype = typeof entry.dtype === "string" ? SAFETENSORS_DTYPES[entry.dtype] : undefined;
    if (!dtype) {
      fail(
        path,
        `tensor ${name} has unsupported dtype ${JSON.stringify(entry.dtype)} ` +
          `(supported: ${Object.keys(SAFETENSORS_DTYPES).join(", ")})`,
      );
    }
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(path, `tensor ${name} has shape ${JSON.stringify(shape)}; expected non-negative integers`);
    }
    const offsets = entry.data_offsets;
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      fail(
        path,
        `tensor ${name} has data_offsets ${JSON.stringify(offsets)}; expected [begin, end], begin <= end`,
      );
    }
    const [begin, end] = offsets as [number, number];
    const expected = numel(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) {
      fail(
        path,
        `tensor ${name}: data_offsets ${begin}..${end} span ${end - begin} bytes but ${dtype} ` +
          `${JSON.stringify(shape)} needs ${expected}`,
      );
    }
    if (end > dataLength) {
      fail(
        path,
        `tensor ${name}: data_offsets end ${end} is past the data section (${dataLength} bytes); ` +
          "the file is truncated or the header is corrupt",
      );
    }
    tensors.set(name, {
      name,
      dtype,
      shape: [...shape],
      byteOffset: dataOffset + begin,
      byteLength: end - begin,
    });
  }
  // Like the reference implementation: tensors must tile the data section exactly, in offset order.
  const ordered = [...tensors.values()].sort((a, b) =>
    a.byteOffset - b.byteOffset || a.byteLength - b.byteLength
  );
  let cursor = dataOffset;
  for (const t of ordered) {
    if (t.byteOffset < cursor) {
      fail(path, `tensor ${t.name} overlaps the tensor before it (starts at ${t.byteOffset - dataOffset})`);
    }
    if (t.byteOffset > cursor) {
      fail(path, `gap of ${t.byteOffset - cursor} bytes before tensor ${t.name}`);
    }
    cursor = t.byteOffset + t.byteLength;
  }
  if (cursor !== fileSize) {
    fail(
      path,
      `tensors end at data byte ${cursor - dataOffset} but the data section has ${dataLength} bytes`,
    );
  }
  return { dataOffset, tensors, metadata };
}

/** An open safetensors file. Tensor bytes are read on demand, one tensor (or row range) at a time. */
export class SafetensorsFile {
  readonly path: string;
  readonly header: SafetensorsHeader;
  #reader: RangeReader;

  private constructor(path: string, reader: RangeReader, header: SafetensorsHeader) {
    this.path = path;
    this.#reader = reader;
    this.header = header;
  }

  static async open(path: string): Promise<SafetensorsFile> {
    const reader = await RangeReader.open(path);
    try {
      if (reader.size < 8) fail(path, `file has ${reader.size} bytes, fewer than the 8-byte header length`);
      const lengthBytes = await reader.read(0, 8);
      const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
      if (headerLength > BigInt(MAX_HEADER_BYTES)) {
        fail(path, `header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
      }
      if (headerLength + 8n > BigInt(reader.size)) {
        fail(path, `header length ${headerLength} runs past the end of the file (${reader.size} bytes)`);
      }
      const headerBytes = await reader.read(8, Number(headerLength));
      return new SafetensorsFile(path, reader, parseSafetensorsHeader(path, headerBytes, reader.size));
    } catch (error) {
      reader.close();
      throw error;
    }
  }

  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  entry(name: string): TensorEntry {
    const entry = this.header.tensors.get(name);
    if (!entry) throw new RangeError(`${this.path}: no tensor named ${JSON.stringify(name)}`);
    return entry;
  }

  info(name: string): TensorInfo {
    const { dtype, shape } = this.entry(name);
    return { dtype, shape: [...shape] };
  }

  async read(name: string, options: ReadOptions = {}): Promise<HostTensor> {
    const entry = this.entry(name);
    const { offset, length, shape } = rowRange(this.path, entry, options.rows);
    const bytes = await this.#reader.read(entry.byteOffset + offset, length);
    return convertFloat(
      { dtype: entry.dtype, shape, data: viewBytes(entry.dtype, bytes) },
      options.as ?? "f32",
    );
  }

  close(): void {
    this.#reader.close();
  }
}

function rowRange(
  path: string,
  entry: TensorEntry,
  rows: [number, number] | undefined,
): { offset: number; length: number; shape: number[] } {
  if (!rows) return { offset: 0, length: entry.byteLength, shape: [...entry.shape] };
  const [start, end] = rows;
  const count = entry.shape[0];
  if (entry.shape.length === 0 || !Number.isSafeInteger(start) || !Number.isSafeInteger(end)) {
    throw new RangeError(
      `${path}: tensor ${entry.name}: rows ${JSON.stringify(rows)} needs integer bounds and rank >= 1`,
    );
  }
  if (start < 0 || end < start || end > count) {
    throw new RangeError(`${path}: tensor ${entry.name}: rows [${start}, ${end}) outside [0, ${count})`);
  }
  const rowBytes = count === 0 ? 0 : entry.byteLength / count;
  return {
    offset: start * rowBytes,
    length: (end - start) * rowBytes,
    shape: [end - start, ...entry.shape.slice(1)],
  };
}

/**
 * A tensor to write. `data` holds the elements in row-major order, either as the dtype's own array
 * (raw bits for f16/bf16) or, for f16/bf16, as a Float32Array that is rounded to nearest even. It may be a
 * function that produces the data when the writer reaches the tensor, so that a large model need not sit
 * in memory all at once.
 */
export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  data: HostData | (() => HostData | Promise<HostData>);
}

function encodeTensor(t: TensorToWrite, data: HostData, path: string): Uint8Array {
  let stored: HostData = data;
  if ((t.dtype === "f16" || t.dtype === "bf16") && data instanceof Float32Array) {
    stored = t.dtype === "f16" ? f32ToF16(data) : f32ToBf16(data);
  }
  const expectedLength = numel(t.shape);
  const expectedBytes = expectedLength * DTYPE_BYTES[t.dtype];
  if (stored.length !== expectedLength || stored.byteLength !== expectedBytes) {
    throw new RangeError(
      `${path}: tensor ${t.name}: ${stored.constructor.name} of ${stored.length} elements does not fit ` +
        `${t.dtype} ${JSON.stringify(t.shape)} (${expectedLength} elements); pass the dtype's typed array ` +
        "(or a Float32Array for f16/bf16)",
    );
  }
  return new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength);
}

function validateTensorList(path: string, tensors: readonly TensorToWrite[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === "__metadata__" || t.name.length === 0) {
      throw new TypeError(`${path}: ${JSON.stringify(t.name)} cannot be a tensor name`);
    }
    if (seen.has(t.name)) throw new TypeError(`${path}: tensor ${t.name} appears twice`);
    seen.add(t.name);
    if (!(t.dtype in DTYPE_BYTES)) {
      throw new TypeError(`${path}: tensor ${t.name} has unknown dtype ${t.dtype}`);
    }
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new RangeError(`${path}: tensor ${t.name} has shape ${JSON.stringify(t.shape)}`);
    }
  }
}

/** Byte size of a tensor once stored. */
export function storedBytes(t: { dtype: DType; shape: number[] }): number {
  return numel(t.shape) * DTYPE_BYTES[t.dtype];
}

/**
 * The reference `serialize` sorts tensors by its Dtype enum in descending order (wider types first), then by
 * name; following it keeps every tensor aligned to its element size and gives the same bytes as Python
 * for the same tensors and metadata (tests/lib/checkpoint/fixtures_test.ts compares with transformers' files).
 */
const WRITE_ORDER: Readonly<Record<DType, number>> = {
  i64: 0,
  f64: 1,
  f32: 2,
  i32: 3,
  bf16: 4,
  f16: 5,
  i16: 6,
  i8: 7,
  u8: 8,
  bool: 9,
};

/**
 * Writes one safetensors file atomically, tensors in WRITE_ORDER; the JSON header is padded with spaces to
 * a multiple of 8 bytes, as the reference implementation pads it.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  validateTensorList(path, tensors);
  const ordered = [...tensors].sort((a, b) =>
    WRITE_ORDER[a.dtype] - WRITE_ORDER[b.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new TypeError(`${path}: metadata ${k} must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const t of ordered) {
    const size = storedBytes(t);
    header[t.name] = {
      dtype: toSafetensorsDType(t.dtype),
      shape: t.shape,
      data_offsets: [offset, offset + size],
    };
    offset += size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const withPadding = new Uint8Array(padded).fill(0x20);
    withPadding.set(json);
    json = withPadding;
  }
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(json.length), true);
  await writeFileAtomic(path, async (file) => {
    await writeAll(file, prefix);
    await writeAll(file, json);
    for (const t of ordered) {
      const data = typeof t.data === "function" ? await t.data() : t.data;
      await writeAll(file, encodeTensor(t, data, path));
    }
  });
}

export interface ShardedWriteOptions {
  /** Largest shard in bytes of tensor data (a single larger tensor gets a shard of its own). */
  maxShardBytes: number;
  metadata?: Record<string, string>;
  /** File name stem: "model" gives model.safetensors or model-00001-of-0000N.safetensors. */
  baseName?: string;
}

/**
 * Writes tensors as transformers does: one `<base>.safetensors` when they fit in `maxShardBytes`, else
 * `<base>-0000i-of-0000N.safetensors` shards (filled in the given order) plus `<base>.safetensors.index.json`
 * with `metadata.total_size` and the `weight_map`. Returns the file names written.
 */
export async function writeShardedSafetensors(
  dir: string,
  tensors: readonly TensorToWrite[],
  options: ShardedWriteOptions,
): Promise<string[]> {
  const base = options.baseName ?? "model";
  if (!(options.maxShardBytes > 0)) {
    throw new RangeError(
      `writeShardedSafetensors: maxShardBytes must be positive, got ${options.maxShardBytes}`,
    );
  }
  validateTensorList(dir, tensors);
  const shards: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let currentBytes = 0;
  for (const t of tensors) {
    const size = storedBytes(t);
    if (current.length > 0 && currentBytes + size > options.maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += size;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  await Deno.mkdir(dir, { recursive: true });
  if (shards.length === 1) {
    const name = `${base}.safetensors`;
    await writeSafetensors(`${dir}/${name}`, shards[0], options.metadata);
    return [name];
  }
  const pad = (i: number) => String(i).padStart(5, "0");
  const names = shards.map((_, i) => `${base}-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`);
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < shards.length; i++) {
    await writeSafetensors(`${dir}/${names[i]}`, shards[i], options.metadata);
    for (const t of shards[i]) weightMap[t.name] = names[i];
  }
  const totalSize = tensors.reduce((sum, t) => sum + storedBytes(t), 0);
  const index = {
    metadata: { ...options.metadata, total_size: totalSize },
    weight_map: sortedRecord(weightMap),
  };
  const indexName = `${base}.safetensors.index.json`;
  await writeTextFileAtomic(`${dir}/${indexName}`, JSON.stringify(index, null, 2) + "\n");
  return [...names, indexName];
}

function sortedRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
