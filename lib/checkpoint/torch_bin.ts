/**
 * PyTorch `pytorch_model.bin` files in the zip format torch.save writes since torch 1.6:
 * `<archive>/data.pkl` (the pickled state dict, whose tensors reference storages by key), `<archive>/data/<key>`
 * (each storage's raw little-endian bytes) and `<archive>/byteorder`. Tensors are read one at a time; strided
 * views (non-contiguous strides, storage offsets, storages shared by several tensors) are gathered into
 * row-major arrays.
 */
import { allocData, convertFloat, DTYPE_BYTES, HostTensor, numel, viewBytes } from "./dtypes.ts";
import { RangeReader } from "./file_io.ts";
import { type PyDict, type TorchTensorRef, unpickleStateDict } from "./pickle.ts";
import type { ReadOptions, TensorInfo } from "./safetensors.ts";
import { readZipEntries, type ZipEntry } from "./zip.ts";

interface BinTensor {
  ref: TorchTensorRef;
  storage: ZipEntry;
}

/** An open torch zip checkpoint. */
export class TorchBinFile {
  readonly path: string;
  #reader: RangeReader;
  #tensors: Map<string, BinTensor>;

  private constructor(path: string, reader: RangeReader, tensors: Map<string, BinTensor>) {
    this.path = path;
    this.#reader = reader;
    this.#tensors = tensors;
  }

  static async open(path: string): Promise<TorchBinFile> {
    const reader = await RangeReader.open(path);
    try {
      const entries = await readZipEntries(reader);
      const pickles = [...entries.keys()].filter((n) => n === "data.pkl" || n.endsWith("/data.pkl"));
      if (pickles.length !== 1) {
        throw new TypeError(
          `${path}: expected one data.pkl in the torch archive, found ${pickles.length}; ` +
            "is this a file written by torch.save?",
        );
      }
      const prefix = pickles[0].slice(0, pickles[0].length - "data.pkl".length);
      const byteorder = entries.get(`${prefix}byteorder`);
      if (byteorder) {
        const order = new TextDecoder().decode(await reader.read(byteorder.dataOffset, byteorder.size))
          .trim();
        if (order !== "little") {
          throw new TypeError(
            `${path}: byteorder is ${JSON.stringify(order)}; only little-endian is supported`,
          );
        }
      }
      const pkl = entries.get(pickles[0])!;
      const root = unpickleStateDict(await reader.read(pkl.dataOffset, pkl.size), `${path}:${pickles[0]}`);
      if (!(root instanceof Map)) {
        throw new TypeError(`${path}: data.pkl holds ${typeof root}, not a state dict (a dict of tensors)`);
      }
      const tensors = new Map<string, BinTensor>();
      for (const [name, value] of root as PyDict) {
        if (typeof name !== "string" || !value || (value as TorchTensorRef).kind !== "tensor") continue;
        const ref = value as TorchTensorRef;
        const storage = entries.get(`${prefix}data/${ref.storage.key}`);
        if (!storage) {
          throw new RangeError(
            `${path}: tensor ${name} uses storage ${ref.storage.key}, which the archive lacks`,
          );
        }
        validateView(path, name, ref, storage);
        tensors.set(name, { ref, storage });
      }
      return new TorchBinFile(path, reader, tensors);
    } catch (error) {
      reader.close();
      throw error;
    }
  }

  names(): string[] {
    return [...this.#tensors.keys()];
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  #get(name: string): BinTensor {
    const t = this.#tensors.get(name);
    if (!t) throw new RangeError(`${this.path}: no tensor named ${JSON.stringify(name)}`);
    return t;
  }

  info(name: string): TensorInfo {
    const { ref } = this.#get(name);
    return { dtype: ref.storage.dtype, shape: [...ref.shape] };
  }

  /** The strided view behind a tensor (for tests and diagnostics). */
  view(name: string): TorchTensorRef {
    return structuredClone(this.#get(name).ref);
  }

  async read(name: string, options: ReadOptions = {}): Promise<HostTensor> {
    const { ref, storage } = this.#get(name);
    const dtype = ref.storage.dtype;
    const size = DTYPE_BYTES[dtype];
    let shape = [...ref.shape];
    let offset = ref.storageOffset;
    if (options.rows) {
      const [start, end] = options.rows;
      if (shape.length === 0 || !Number.isSafeInteger(start) || !Number.isSafeInteger(end)) {
        throw new RangeError(
          `${this.path}: tensor ${name}: rows ${JSON.stringify(options.rows)} needs rank >= 1`,
        );
      }
      if (start < 0 || end < start || end > shape[0]) {
        throw new RangeError(
          `${this.path}: tensor ${name}: rows [${start}, ${end}) outside [0, ${shape[0]})`,
        );
      }
      offset += start * ref.stride[0];
      shape = [end - start, ...shape.slice(1)];
    }
    const count = numel(shape);
    if (count === 0) return convertFloat({ dtype, shape, data: allocData(dtype, 0) }, options.as ?? "f32");
    const span = maxIndex(shape, ref.stride) + 1;
    const bytes = await this.#reader.read(storage.dataOffset + offset * size, span * size);
    const source = viewBytes(dtype, bytes);
    const data = isRowMajor(shape, ref.stride)
      ? source
      : gather(source, shape, ref.stride, allocData(dtype, count));
    return convertFloat({ dtype, shape, data }, options.as ?? "f32");
  }

  close(): void {
    this.#reader.close();
  }
}

function maxIndex(shape: readonly number[], stride: readonly number[]): number {
  let m = 0;
  for (let i = 0; i < shape.length; i++) m += (shape[i] - 1) * stride[i];
  return m;
}

function isRowMajor(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

function validateView(path: string, name: string, ref: TorchTensorRef, storage: ZipEntry): void {
  const size = DTYPE_BYTES[ref.storage.dtype];
  if (storage.size % size !== 0) {
    throw new RangeError(
      `${path}: storage ${ref.storage.key} has ${storage.size} bytes, not whole ${ref.storage.dtype}`,
    );
  }
  if (!ref.shape.every((d) => d >= 0) || !ref.stride.every((s) => s >= 0)) {
    throw new RangeError(`${path}: tensor ${name} has negative sizes or strides`);
  }
  if (numel(ref.shape) === 0) return;
  const last = ref.storageOffset + maxIndex(ref.shape, ref.stride);
  const elements = storage.size / size;
  if (last >= elements) {
    throw new RangeError(
      `${path}: tensor ${name} (offset ${ref.storageOffset}, size ${JSON.stringify(ref.shape)}, stride ` +
        `${
          JSON.stringify(ref.stride)
        }) reaches element ${last} of storage ${ref.storage.key}, which has ${elements}`,
    );
  }
}

/** Copies a strided view (relative to the start of `source`) into a row-major array. */
function gather<T extends { length: number; [i: number]: unknown }>(
  source: T,
  shape: readonly number[],
  stride: readonly number[],
  out: T,
): T {
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  const total = out.length;
  let at = 0;
  for (let i = 0; i < total; i++) {
    out[i] = source[at];
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      at += stride[d];
      if (index[d] < shape[d]) break;
      at -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}
