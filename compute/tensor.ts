/**
 * Tensors: a shape and dtype over a range of a pooled GPU buffer. Contiguous row-major; views (reshape, row
 * ranges) share storage, which is reference-counted and returned to the pool when the last holder lets go.
 * Host data moves only on upload and on an explicit `read()`.
 */
import type { PooledBuffer } from "./buffers.ts";
import { type BufferRange, rt } from "./runtime.ts";

export type DType = "f32" | "f16" | "i32" | "u32";

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, i32: 4, u32: 4 };

type HostArray = Float32Array | Int32Array | Uint32Array | Uint16Array;

/** A gradient-graph node (see autograd.ts); kept opaque here to avoid a cycle. */
export interface GradNode {
  release(): void;
}

class Storage {
  refs = 1;
  constructor(readonly entry: PooledBuffer) {}
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0) rt().pool.release(this.entry);
  }
}

/** Tensors created inside tidy() scopes are disposed when the scope ends unless returned or kept. */
const scopes: Set<Tensor>[] = [];

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function checkShape(shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid tensor shape ${shapeString(shape)}`);
  }
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Offset into the storage, in elements. */
  readonly offset: number;
  private storage: Storage | null;
  /** True for trainable leaves and for outputs of ops on them while gradients are recorded. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf after backward(). */
  grad: Tensor | null = null;
  /** The op that produced this tensor, while the graph is alive. */
  node: GradNode | null = null;
  name = "";

  constructor(shape: readonly number[], dtype: DType, storage: Storage, offset = 0) {
    checkShape(shape);
    this.shape = [...shape];
    this.dtype = dtype;
    this.storage = storage;
    this.offset = offset;
    scopes.at(-1)?.add(this);
  }

  get size(): number {
    return shapeSize(this.shape);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get bytes(): number {
    return this.size * DTYPE_BYTES[this.dtype];
  }
  get disposed(): boolean {
    return this.storage === null;
  }
  /** Row-major strides in elements. */
  get strides(): number[] {
    const strides = new Array(this.shape.length).fill(1);
    for (let i = this.shape.length - 2; i >= 0; i--) strides[i] = strides[i + 1] * this.shape[i + 1];
    return strides;
  }

  private live(): Storage {
    if (!this.storage) throw new Error(`tensor ${this.name || shapeString(this.shape)} was already disposed`);
    return this.storage;
  }

  /** The bound byte range (rounded up to 4 bytes as bindings require). */
  get range(): BufferRange {
    const storage = this.live();
    const offset = this.offset * DTYPE_BYTES[this.dtype];
    return { buffer: storage.entry.buffer, offset, size: Math.max(4, Math.ceil(this.bytes / 4) * 4) };
  }

  /**
   * The whole buffer the tensor's storage holds, for kernels that take the tensor's element offset (`offset`)
   * as a parameter instead: every view of one allocation then binds the same range, so their bind groups are
   * reused (decoding reads each step's positions from rows of one buffer).
   */
  get wholeBuffer(): BufferRange {
    const buffer = this.live().entry.buffer;
    return { buffer, offset: 0, size: buffer.size };
  }

  /**
   * The same data under another shape (size unchanged), sharing storage. Recorded for autograd, so gradients
   * flow through reshapes.
   */
  reshape(shape: readonly number[]): Tensor {
    const resolved = resolveShape(shape, this.size);
    if (shapeSize(resolved) !== this.size) {
      throw new RangeError(`cannot reshape ${shapeString(this.shape)} to ${shapeString(shape)}`);
    }
    const out = this.view(resolved);
    reshapeHook?.(this, out);
    return out;
  }

  /** A new tensor object over the same storage, outside autograd (saved tensors, detached copies). */
  view(shape: readonly number[] = this.shape): Tensor {
    const storage = this.live();
    storage.retain();
    return new Tensor(shape, this.dtype, storage, this.offset);
  }

  /** Rows [start, end) along the first dimension, sharing storage; the offset must meet binding alignment. */
  rows(start: number, end: number): Tensor {
    const rows = this.shape[0];
    if (!(0 <= start && start <= end && end <= rows)) {
      throw new RangeError(`rows ${start}..${end} out of range for ${shapeString(this.shape)}`);
    }
    const rowSize = this.size / Math.max(rows, 1);
    const offset = this.offset + start * rowSize;
    const align = rt().gpu.storageAlign;
    if ((offset * DTYPE_BYTES[this.dtype]) % align !== 0) {
      throw new RangeError(`row view at element ${offset} is not ${align}-byte aligned; copy instead`);
    }
    const storage = this.live();
    storage.retain();
    return new Tensor([end - start, ...this.shape.slice(1)], this.dtype, storage, offset);
  }

  /** Downloads the data (submits pending GPU work). */
  async read(): Promise<HostArray> {
    const bytes = await rt().read(this.range, this.bytes);
    switch (this.dtype) {
      case "f32":
        return new Float32Array(bytes);
      case "f16":
        return new Uint16Array(bytes);
      case "i32":
        return new Int32Array(bytes);
      case "u32":
        return new Uint32Array(bytes);
    }
  }

  /** Downloads f32 data as a number array (tests, small results). */
  async toArray(): Promise<number[]> {
    return Array.from(await this.read());
  }

  /** Reads a single-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new RangeError(`item() needs one element, tensor has shape ${shapeString(this.shape)}`);
    }
    return (await this.read())[0];
  }

  /** Overwrites the contents from host data of the same size. */
  write(data: ArrayLike<number> | HostArray): void {
    if (data.length !== this.size) {
      throw new RangeError(`write of ${data.length} values into tensor of shape ${shapeString(this.shape)}`);
    }
    rt().write(this.range, toHost(data, this.dtype));
  }

  /** Releases this tensor's hold on its storage (and its gradient). Idempotent. */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    this.grad?.dispose();
    this.grad = null;
    // `node` stays: a disposed intermediate is still a link in the recorded graph until backward/clearTape.
    scopes.at(-1)?.delete(this);
  }

  /** Moves the storage's bytes to another accounting tag. */
  retag(tag: string): this {
    rt().pool.retag(this.live().entry, tag);
    return this;
  }

  toString(): string {
    return `Tensor(${this.name ? this.name + ", " : ""}${shapeString(this.shape)}, ${this.dtype})`;
  }
}

function resolveShape(shape: readonly number[], size: number): number[] {
  const unknown = shape.indexOf(-1);
  if (unknown < 0) return [...shape];
  const known = shape.reduce((a, d, i) => (i === unknown ? a : a * d), 1);
  const out = [...shape];
  out[unknown] = known === 0 ? 0 : size / known;
  return out;
}

function toHost(data: ArrayLike<number> | HostArray, dtype: DType): HostArray {
  switch (dtype) {
    case "f32":
      return data instanceof Float32Array ? data : Float32Array.from(data);
    case "f16":
      if (!(data instanceof Uint16Array)) throw new TypeError("f16 uploads take raw bits as a Uint16Array");
      return data;
    case "i32":
      return data instanceof Int32Array ? data : Int32Array.from(data);
    case "u32":
      return data instanceof Uint32Array ? data : Uint32Array.from(data);
  }
}

let poisonHook: ((t: Tensor) => void) | null = null;
let reshapeHook: ((from: Tensor, to: Tensor) => void) | null = null;

/** Autograd registers how a reshape is recorded (tensor.ts cannot import autograd.ts: it imports this file). */
export function setReshapeHook(hook: (from: Tensor, to: Tensor) => void): void {
  reshapeHook = hook;
}

/**
 * Tests set this to fill every new tensor with NaN bits, so an element a kernel fails to write shows up.
 */
export function setPoisonOnAlloc(hook: ((t: Tensor) => void) | null): void {
  poisonHook = hook;
}

/** An uninitialised tensor on the GPU. */
export function empty(shape: readonly number[], dtype: DType = "f32", tag = "activations"): Tensor {
  checkShape(shape);
  const entry = rt().pool.alloc(shapeSize(shape) * DTYPE_BYTES[dtype], tag);
  const t = new Tensor(shape, dtype, new Storage(entry));
  poisonHook?.(t);
  return t;
}

/** Uploads host data as a new tensor. */
export function tensor(
  data: ArrayLike<number> | HostArray,
  shape: readonly number[],
  dtype: DType = "f32",
  tag = "activations",
): Tensor {
  if (shapeSize(shape) !== data.length) {
    throw new RangeError(`${data.length} values do not fill shape ${shapeString(shape)}`);
  }
  const t = empty(shape, dtype, tag);
  t.write(data);
  return t;
}

/** A trainable leaf: kept outside scopes, requires gradients. */
export function parameter(data: ArrayLike<number>, shape: readonly number[], name = ""): Tensor {
  const t = keep(tensor(data, shape, "f32", "weights"));
  t.requiresGrad = true;
  t.name = name;
  return t;
}

/**
 * Runs `fn` in a scope: tensors it creates are disposed when it returns, except those in its result (a tensor,
 * an array of tensors, or an object whose values are tensors) and those passed to keep().
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  for (const t of scope) if (!survivors.has(t)) t.dispose();
  const parent = scopes.at(-1);
  if (parent) { for (const t of survivors) if (scope.has(t)) parent.add(t); }
  return result;
}

function collectTensors(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) { for (const v of value) collectTensors(v, into); }
  else if (value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into);
  }
}

/** Removes a tensor from every enclosing scope so it outlives them. */
export function keep<T extends Tensor>(t: T): T {
  for (const scope of scopes) scope.delete(t);
  return t;
}

/** Shape equality check that throws a RangeError naming both shapes. */
export function assertSameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new RangeError(`${op}: shapes ${shapeString(a.shape)} and ${shapeString(b.shape)} differ`);
  }
}

export function assertDType(op: string, t: Tensor, ...dtypes: DType[]): void {
  if (!dtypes.includes(t.dtype)) {
    throw new TypeError(`${op}: expected dtype ${dtypes.join(" or ")}, got ${t.dtype} for ${t}`);
  }
}
