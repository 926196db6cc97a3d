/**
 * The engine's runtime: pipelines cached by kernel + specialisation, bind groups reused, many dispatches encoded
 * into one command buffer, kernel parameters packed into one uniform arena per submission, and readbacks only on
 * demand.
 */
import { BufferPool } from "./buffers.ts";
import { getGpu, type Gpu } from "./gpu.ts";
import { workgroupReduceWgsl } from "./workgroup_reduce.ts";

/** How a kernel uses each binding, in binding order (binding 0 is always the uniform parameters). */
export type BindingKind = "read" | "write";

/** A contiguous byte range of a GPU buffer. */
export interface BufferRange {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** One compute entry point of a .wgsl kernel family, specialised by text defines. */
export interface KernelSpec {
  /** The .wgsl file (URL relative to the wrapper's import.meta.url). */
  file: URL;
  entry: string;
  /** Storage bindings after the uniform (binding 1..n). */
  bindings: BindingKind[];
  /**
   * `{{NAME}}` placeholders in the source are replaced by these values; they are part of the cache key. The
   * runtime fills `{{WORKGROUP_REDUCE}}` itself (compute/workgroup_reduce.ts, for the subgroups in use).
   */
  defines?: Record<string, string | number>;
}

const F32 = new Float32Array(1);
const F32_BITS = new Uint32Array(F32.buffer);

/**
 * Builds a kernel's uniform parameter block: every field is 4 bytes, in declaration order. Kept as plain numbers
 * (bit patterns) and written straight into the arena, since a dispatch's host cost is what decoding pays.
 */
export class Params {
  /** The fields as 32-bit words. */
  readonly words: number[] = [];
  u32(...values: number[]): this {
    for (const v of values) this.push(v >>> 0);
    return this;
  }
  i32(...values: number[]): this {
    for (const v of values) this.push(v >>> 0);
    return this;
  }
  f32(...values: number[]): this {
    for (const v of values) {
      F32[0] = v;
      this.push(F32_BITS[0]);
    }
    return this;
  }
  private push(word: number): void {
    if (this.words.length === PARAMS_BYTES / 4) throw new RangeError("kernel parameters exceed 256 bytes");
    this.words.push(word);
  }
}

const PARAMS_BYTES = 256;
const ARENA_BYTES = 4 << 20;
/**
 * Dispatches encoded before they are submitted without being asked: a training step is thousands of dispatches,
 * and submitting them as they come lets the GPU start while the host still encodes the rest.
 */
const AUTO_SUBMIT = 256;
const MAX_CACHED_BIND_GROUPS = 50_000;
const sources = new Map<string, string>();

function loadSource(file: URL): string {
  let text = sources.get(file.href);
  if (text === undefined) {
    text = Deno.readTextFileSync(file);
    sources.set(file.href, text);
  }
  return text;
}

/** Replaces `{{NAME}}` placeholders; an unreplaced one is a bug in the wrapper, so it throws. */
export function specialise(source: string, defines: Record<string, string | number> = {}): string {
  const out = source.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    if (!(name in defines)) throw new TypeError(`kernel placeholder {{${name}}} has no value`);
    return String(defines[name]);
  });
  return out;
}

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** Pipelines with the same binding kinds share a layout, and so their bind groups. */
  layoutKey: string;
}

/** Whether two specs name the same kernel: file, entry, bindings and defines alike (defines compared by value). */
function sameSpec(a: KernelSpec, b: KernelSpec): boolean {
  if (a.entry !== b.entry || a.file.href !== b.file.href || a.bindings.length !== b.bindings.length) {
    return false;
  }
  for (let i = 0; i < a.bindings.length; i++) if (a.bindings[i] !== b.bindings[i]) return false;
  const da = a.defines ?? {};
  const db = b.defines ?? {};
  let count = 0;
  for (const name in da) {
    if (da[name] !== db[name]) return false;
    count++;
  }
  return count === Object.keys(db).length;
}

export class Runtime {
  readonly gpu: Gpu;
  readonly pool: BufferPool;
  private pipelines = new Map<string, CachedPipeline>();
  private pipelinesBySpec = new WeakMap<KernelSpec, CachedPipeline>();
  /**
   * Pipelines by entry point, for specs that wrappers build anew on every call: a new object is matched field
   * by field against the specs seen before (a few comparisons) instead of by its text key (every define
   * stringified and joined, several microseconds a dispatch of the host's time).
   */
  private pipelinesByEntry = new Map<string, { spec: KernelSpec; cached: CachedPipeline }[]>();
  private layouts = new Map<string, GPUBindGroupLayout>();
  private longDefines = new Map<string, number>();
  private bindGroups = new Map<string, GPUBindGroup>();
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arena: GPUBuffer;
  private arenaHost = new Uint8Array(ARENA_BYTES);
  private arenaWords = new Uint32Array(this.arenaHost.buffer);
  private arenaUsed = 0;
  /** Dispatches encoded since start, for tests and the bench. */
  dispatchCount = 0;
  submitCount = 0;
  private unsubmitted = 0;
  private passCount = 0;

  /**
   * The subgroup width kernels are written for, null for none: the device's (Gpu.subgroupSize) unless turned
   * off with `useSubgroups(false)`. Wrappers that template subgroup code key their specs by it.
   */
  get subgroups(): number | null {
    return this.subgroupsOn ? this.gpu.subgroupSize : null;
  }
  private subgroupsOn = true;

  /**
   * Turns subgroup kernels on (where the device has them) or off: tests run both variants, the bench compares
   * them. Pipelines already built stay cached under their own keys.
   */
  useSubgroups(on: boolean): void {
    if (on === this.subgroupsOn) return;
    this.subgroupsOn = on;
    this.pipelinesBySpec = new WeakMap();
    this.pipelinesByEntry = new Map();
  }

  constructor(gpu: Gpu) {
    this.gpu = gpu;
    this.pool = new BufferPool(gpu);
    this.arena = gpu.device.createBuffer({
      size: ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: "kernel-params",
    });
  }

  pipeline(spec: KernelSpec): CachedPipeline {
    // Wrappers that keep their spec objects (matmul, gemv) skip building the text key on every dispatch.
    const known = this.pipelinesBySpec.get(spec);
    if (known) return known;
    let seen = this.pipelinesByEntry.get(spec.entry);
    if (!seen) this.pipelinesByEntry.set(spec.entry, seen = []);
    const same = seen.find((s) => sameSpec(s.spec, spec));
    if (same) {
      this.pipelinesBySpec.set(spec, same.cached);
      return same.cached;
    }
    const defines = { ...spec.defines, WORKGROUP_REDUCE: workgroupReduceWgsl(this.subgroups) };
    const key = `${spec.file.href}#${spec.entry}|${spec.bindings.join(",")}|${
      Object.entries(defines).map(([k, v]) => `${k}=${this.defineKey(v)}`).join(",")
    }`;
    let cached = this.pipelines.get(key);
    if (cached) {
      this.pipelinesBySpec.set(spec, cached);
      seen.push({ spec, cached });
      return cached;
    }
    const device = this.gpu.device;
    const layout = this.layout(spec.bindings);
    let code = specialise(loadSource(spec.file), defines);
    if (code.includes("f16") && this.gpu.hasF16 && !code.includes("enable f16;")) {
      code = `enable f16;\n${code}`;
    }
    const module = device.createShaderModule({ code, label: key });
    const pipeline = device.createComputePipeline({
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: spec.entry },
      label: key,
    });
    cached = { pipeline, layout, layoutKey: spec.bindings.join(",") };
    this.pipelines.set(key, cached);
    this.pipelinesBySpec.set(spec, cached);
    seen.push({ spec, cached });
    return cached;
  }

  /**
   * A define's part of a pipeline key: long values (WGSL snippets) by a number, so wrappers that build their
   * spec per call do not concatenate and hash kilobytes of text per dispatch.
   */
  private defineKey(value: string | number): string | number {
    if (typeof value === "number" || value.length <= 32) return value;
    let id = this.longDefines.get(value);
    if (id === undefined) this.longDefines.set(value, id = this.longDefines.size);
    return `\u0000${id}`;
  }

  private layout(bindings: BindingKind[]): GPUBindGroupLayout {
    const key = bindings.join(",");
    let layout = this.layouts.get(key);
    if (!layout) {
      layout = this.gpu.device.createBindGroupLayout({
        entries: [
          // The parameters' slot in the arena is a dynamic offset, so a bind group serves every dispatch of the
          // same buffers whatever its slot (creating bind groups is the costliest part of encoding).
          {
            binding: 0,
            visibility: GPUShaderStage.COMPUTE,
            buffer: { type: "uniform", hasDynamicOffset: true },
          },
          ...bindings.map((kind, i) => ({
            binding: i + 1,
            visibility: GPUShaderStage.COMPUTE,
            buffer: { type: kind === "read" ? "read-only-storage" as const : "storage" as const },
          })),
        ],
      });
      this.layouts.set(key, layout);
    }
    return layout;
  }

  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) this.bufferIds.set(buffer, id = this.nextBufferId++);
    return id;
  }

  /**
   * Encodes one dispatch. `groups` is the number of workgroups; beyond the per-dimension limit it is folded
   * into a 2-D grid, which kernels unfold with `wid.x + wid.y * nwg.x`.
   */
  dispatch(
    spec: KernelSpec,
    params: Params,
    buffers: BufferRange[],
    groups: number | [number, number, number],
  ) {
    if (buffers.length !== spec.bindings.length) {
      throw new TypeError(
        `kernel ${spec.entry} takes ${spec.bindings.length} buffers, got ${buffers.length}`,
      );
    }
    const { pipeline, layout, layoutKey } = this.pipeline(spec);
    const align = this.gpu.uniformAlign;
    if (this.arenaUsed + PARAMS_BYTES > ARENA_BYTES) this.flush();
    const paramOffset = this.arenaUsed;
    // The whole 256-byte slot is written: a kernel's struct may be longer than the fields a wrapper sets, and
    // those read as zero.
    const word = paramOffset / 4;
    this.arenaWords.fill(0, word, word + PARAMS_BYTES / 4);
    this.arenaWords.set(params.words, word);
    this.arenaUsed = Math.ceil((paramOffset + PARAMS_BYTES) / align) * align;

    let bindKey = layoutKey;
    for (const b of buffers) bindKey += `|${this.bufferId(b.buffer)}:${b.offset}:${b.size}`;
    let group = this.bindGroups.get(bindKey);
    if (!group) {
      if (this.bindGroups.size >= MAX_CACHED_BIND_GROUPS) this.bindGroups.clear();
      group = this.gpu.device.createBindGroup({
        layout,
        entries: [
          { binding: 0, resource: { buffer: this.arena, offset: 0, size: PARAMS_BYTES } },
          ...buffers.map((b, i) => ({
            binding: i + 1,
            resource: { buffer: b.buffer, offset: b.offset, size: b.size },
          })),
        ],
      });
      this.bindGroups.set(bindKey, group);
    }
    const pass = this.profiler ? this.profiledPass(spec, groups) : this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group, [paramOffset]);
    let [x, y, z] = typeof groups === "number" ? [groups, 1, 1] : groups;
    const limit = this.gpu.maxWorkgroupsPerDim;
    if (x > limit) {
      if (y !== 1 || z !== 1) throw new RangeError(`dispatch of ${x}x${y}x${z} workgroups is over the limit`);
      y = Math.ceil(x / limit);
      x = limit;
      if (y > limit) throw new RangeError(`dispatch of ${x * y} workgroups is over the device limit`);
    }
    if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
    this.dispatchCount++;
    if (++this.unsubmitted >= AUTO_SUBMIT && !this.timed && this.wholeSubmissions === 0) this.flush();
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) {
      this.encoder ??= this.gpu.device.createCommandEncoder();
      const timing = this.timing;
      this.passCount++;
      this.pass = timing
        ? this.encoder.beginComputePass({
          timestampWrites: {
            querySet: timing.querySet,
            beginningOfPassWriteIndex: 0,
            endOfPassWriteIndex: 1,
          },
        })
        : this.encoder.beginComputePass();
      this.timing = null;
    }
    return this.pass;
  }

  /** Set while `profile` runs: every dispatch gets its own pass with timestamps around it. */
  private profiler: DispatchProfiler | null = null;

  private profiledPass(spec: KernelSpec, groups: number | [number, number, number]): GPUComputePassEncoder {
    if (this.pass) this.pass.end();
    this.encoder ??= this.gpu.device.createCommandEncoder();
    this.passCount++;
    this.pass = this.encoder.beginComputePass({ timestampWrites: this.profiler!.next(spec, groups) });
    return this.pass;
  }

  /**
   * GPU time per kernel of everything `work` dispatches (it may await readbacks): each dispatch runs in its own
   * compute pass between two timestamps, so gaps between dispatches are not counted and the dispatches do not
   * overlap. Rows are per kernel (file:entry) and workgroup grid, slowest first. Null without timestamp queries.
   */
  async profile(work: () => unknown): Promise<KernelTime[] | null> {
    if (!this.gpu.device.features.has("timestamp-query")) return null;
    if (this.profiler || this.timed) throw new Error("profile: a measurement is already in progress");
    this.flush();
    const profiler = new DispatchProfiler(this.gpu.device);
    this.profiler = profiler;
    try {
      await work();
      this.flush();
      return await profiler.read((p) => this.gpu.guard(p));
    } finally {
      this.profiler = null;
      profiler.destroy();
    }
  }

  private timing: { querySet: GPUQuerySet } | null = null;
  /** True while gpuTime encodes: the measured dispatches must stay in one pass, so no automatic submission. */
  private timed = false;
  /** Depth of asOneSubmission scopes. */
  private wholeSubmissions = 0;

  /**
   * Encodes `encode` and submits it as one submission, without the automatic ones (a decoded token: each
   * submission costs the host a fixed toll, and a token is already submitted on its own).
   */
  asOneSubmission<T>(encode: () => T): T {
    this.wholeSubmissions++;
    try {
      return encode();
    } finally {
      this.wholeSubmissions--;
      if (this.wholeSubmissions === 0) this.flush();
    }
  }

  /** True while `prepare` encodes: nothing may be submitted then. */
  private preparing = false;
  /** True from `prepare` until its submission: one at a time, as the pool holds released buffers for it. */
  private preparedPending = false;

  /**
   * Encodes `encode` into a command buffer of its own and returns it unsubmitted (decoding encodes a step before a
   * readback blocks the host until the GPU is done, and submits it right after, so the GPU does not wait for the
   * host). Pending work is submitted first. `submit` queues it after all work issued before that call, with its
   * own kernel parameters (the arena is rewritten from its start at every submission). Buffers freed from now
   * until `submit` are not reused until then: work submitted ahead of the prepared work must not write a buffer
   * that it still uses. `encode` must not submit (read, write, sync) and must fit the parameter arena.
   */
  prepare<T>(encode: () => T): Prepared<T> {
    if (this.preparedPending) throw new Error("prepare: the last prepared work was not submitted yet");
    this.flush();
    const reuse = this.pool.holdReleases();
    this.preparing = true;
    this.wholeSubmissions++;
    let result: T;
    try {
      result = encode();
    } catch (err) {
      // The work is dropped unsubmitted, so what it freed is free now.
      this.pass = null;
      this.encoder = null;
      this.arenaUsed = 0;
      this.unsubmitted = 0;
      reuse();
      throw err;
    } finally {
      this.preparing = false;
      this.wholeSubmissions--;
    }
    if (this.pass) this.pass.end();
    this.pass = null;
    const commands = this.encoder?.finish();
    const params = this.arenaHost.slice(0, this.arenaUsed);
    this.encoder = null;
    this.arenaUsed = 0;
    this.unsubmitted = 0;
    this.preparedPending = true;
    let submitted = false;
    return {
      result,
      submit: () => {
        if (submitted) throw new Error("prepare: this prepared work was already submitted");
        submitted = true;
        this.preparedPending = false;
        try {
          this.flush();
          if (!commands) return;
          if (params.byteLength > 0) this.gpu.device.queue.writeBuffer(this.arena, 0, params);
          this.gpu.device.queue.submit([commands]);
          this.submitCount++;
        } finally {
          reuse();
        }
      },
    };
  }

  /** The query set and buffers gpuTime reuses (created on first use: a set per measurement added up). */
  private timer: { querySet: GPUQuerySet; resolved: GPUBuffer; staging: GPUBuffer; busy: boolean } | null =
    null;

  /**
   * GPU time (ms) of the dispatches `encode` issues, from timestamp queries around one compute pass (so host
   * latency such as readback polling is not counted). Null when the device has no timestamp queries or `encode`
   * ended the pass early (a buffer copy); callers then fall back to wall-clock timing. One at a time.
   */
  async gpuTime(encode: () => void): Promise<number | null> {
    if (!this.gpu.device.features.has("timestamp-query")) return null;
    this.flush();
    const device = this.gpu.device;
    this.timer ??= {
      querySet: device.createQuerySet({ type: "timestamp", count: 2 }),
      resolved: device.createBuffer({
        size: 16,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      }),
      staging: device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      busy: false,
    };
    const timer = this.timer;
    if (timer.busy || this.profiler) {
      throw new Error("gpuTime: a measurement is already in progress; await it first");
    }
    timer.busy = true;
    try {
      this.timing = { querySet: timer.querySet };
      this.timed = true;
      const passesBefore = this.passCount;
      encode();
      this.timing = null;
      this.timed = false;
      if (!this.pass || this.passCount !== passesBefore + 1) {
        this.flush();
        return null;
      }
      this.pass.end();
      this.pass = null;
      this.encoder!.resolveQuerySet(timer.querySet, 0, 2, timer.resolved, 0);
      this.encoder!.copyBufferToBuffer(timer.resolved, 0, timer.staging, 0, 16);
      this.flush();
      await this.gpu.guard(timer.staging.mapAsync(GPUMapMode.READ));
      const [begin, end] = new BigUint64Array(timer.staging.getMappedRange().slice(0));
      timer.staging.unmap();
      return Number(end - begin) / 1e6;
    } finally {
      this.timing = null;
      this.timed = false;
      timer.busy = false;
    }
  }

  /** Copies between buffers in stream order with the dispatches. */
  copy(src: BufferRange, dst: BufferRange, bytes: number): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    this.encoder ??= this.gpu.device.createCommandEncoder();
    this.encoder.copyBufferToBuffer(src.buffer, src.offset, dst.buffer, dst.offset, bytes);
  }

  /** Submits everything encoded so far. */
  flush(): void {
    if (this.preparing) {
      throw new Error(
        "prepare: the work it encodes cannot be submitted early (a read, write or sync inside it, or more than " +
          `${ARENA_BYTES / PARAMS_BYTES} dispatches)`,
      );
    }
    this.gpu.check();
    if (!this.encoder) return;
    if (this.pass) this.pass.end();
    this.pass = null;
    if (this.arenaUsed > 0) {
      this.gpu.device.queue.writeBuffer(this.arena, 0, this.arenaHost, 0, this.arenaUsed);
    }
    this.arenaUsed = 0;
    this.gpu.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.submitCount++;
    this.unsubmitted = 0;
  }

  /**
   * Writes host data into a buffer. Pending dispatches are submitted first: queue writes are ordered before
   * unsubmitted work, so without the flush a recycled buffer could be overwritten before an earlier read.
   */
  write(dst: BufferRange, data: ArrayBufferView): void {
    this.flush();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 === 0) {
      this.gpu.device.queue.writeBuffer(dst.buffer, dst.offset, bytes);
    } else {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      this.gpu.device.queue.writeBuffer(dst.buffer, dst.offset, padded);
    }
  }

  /** Reads a buffer range back to the host (submits pending work). */
  async read(src: BufferRange, bytes: number): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.gpu.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      this.copy(src, { buffer: staging, offset: 0, size }, size);
      this.flush();
      await this.gpu.guard(staging.mapAsync(GPUMapMode.READ));
      return staging.getMappedRange().slice(0, bytes);
    } finally {
      staging.destroy();
    }
  }

  /** Waits until the GPU has finished all submitted work. */
  async sync(): Promise<void> {
    this.flush();
    await this.gpu.guard(this.gpu.device.queue.onSubmittedWorkDone());
  }

  /** Frees pooled buffers (bind groups that name them go too). */
  trim(): void {
    this.flush();
    this.bindGroups.clear();
    this.pool.trim();
  }
}

/** Work encoded by `Runtime.prepare`, not yet submitted. */
export interface Prepared<T> {
  /** What `encode` returned. */
  readonly result: T;
  /** Queues the work after everything issued before this call; once only. */
  submit(): void;
}

/** One row of a profile: a kernel at one workgroup grid, its dispatch count and total GPU time. */
export interface KernelTime {
  kernel: string;
  grid: string;
  count: number;
  ms: number;
}

/** WebGPU's largest query set. */
const QUERIES_PER_SET = 4096;

/** The timestamp query sets of one profile, a pair of queries per dispatch. */
class DispatchProfiler {
  private sets: GPUQuerySet[] = [];
  private labels: string[] = [];
  constructor(private device: GPUDevice) {}

  next(spec: KernelSpec, groups: number | [number, number, number]): GPUComputePassTimestampWrites {
    const index = this.labels.length;
    const slot = (2 * index) % QUERIES_PER_SET;
    if (slot === 0) this.sets.push(this.device.createQuerySet({ type: "timestamp", count: QUERIES_PER_SET }));
    const name = spec.file.pathname.split("/").pop()!.replace(/\.wgsl$/, "");
    this.labels.push(`${name}:${spec.entry}\u0000${typeof groups === "number" ? groups : groups.join("x")}`);
    return { querySet: this.sets.at(-1)!, beginningOfPassWriteIndex: slot, endOfPassWriteIndex: slot + 1 };
  }

  async read(guard: (p: Promise<void>) => Promise<void>): Promise<KernelTime[]> {
    const bytes = 2 * this.labels.length * 8;
    const resolved = this.device.createBuffer({
      size: Math.max(8, bytes),
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const staging = this.device.createBuffer({
      size: Math.max(8, bytes),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      const encoder = this.device.createCommandEncoder();
      this.sets.forEach((set, i) => {
        const count = Math.min(QUERIES_PER_SET, 2 * this.labels.length - i * QUERIES_PER_SET);
        encoder.resolveQuerySet(set, 0, count, resolved, i * QUERIES_PER_SET * 8);
      });
      encoder.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
      this.device.queue.submit([encoder.finish()]);
      await guard(staging.mapAsync(GPUMapMode.READ));
      const stamps = new BigUint64Array(staging.getMappedRange().slice(0, bytes));
      staging.unmap();
      const rows = new Map<string, KernelTime>();
      this.labels.forEach((label, i) => {
        let row = rows.get(label);
        if (!row) {
          const [kernel, grid] = label.split("\u0000");
          rows.set(label, row = { kernel, grid, count: 0, ms: 0 });
        }
        row.count++;
        row.ms += Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6;
      });
      return [...rows.values()].sort((a, b) => b.ms - a.ms);
    } finally {
      resolved.destroy();
      staging.destroy();
    }
  }

  destroy(): void {
    for (const set of this.sets) set.destroy();
  }
}

let runtime: Runtime | null = null;

/** Opens the GPU and the runtime once per process. */
export async function initRuntime(): Promise<Runtime> {
  runtime ??= new Runtime(await getGpu());
  return runtime;
}

/** The runtime opened by initRuntime(); ops are synchronous (they only encode) and need it open. */
export function rt(): Runtime {
  if (!runtime) throw new Error("the GPU runtime is not open: await initRuntime() first");
  return runtime;
}
