/**
 * The GPU context: one adapter, one device, and the single place where device loss and uncaptured WebGPU
 * errors become thrown errors. Everything else in compute/ reaches the device through `getGpu()`.
 */

/** What the lab shows about the adapter in use. */
export interface AdapterSummary {
  description: string;
  vendor: string;
  architecture: string;
  device: string;
  isFallback: boolean;
  features: string[];
  limits: Record<string, number>;
}

/** Thrown when no WebGPU adapter can be had; the message says what to install. */
export class GpuUnavailableError extends Error {
  constructor(reason: string) {
    super(
      `${reason}\nOstrota runs its tensor work through WebGPU (Vulkan). On a machine without a GPU, install ` +
        `Mesa's CPU Vulkan driver:\n  Debian/Ubuntu: sudo apt-get install -y mesa-vulkan-drivers\n` +
        `  Fedora: sudo dnf install -y mesa-vulkan-drivers\nWith a GPU, install its vendor's Vulkan driver ` +
        `(NVIDIA: the proprietary driver ships one; AMD/Intel: mesa-vulkan-drivers).`,
    );
    this.name = "GpuUnavailableError";
  }
}

/** Thrown when the device was lost or a WebGPU validation/out-of-memory error surfaced. */
export class GpuDeviceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GpuDeviceError";
  }
}

/** The limits we ask the adapter for at their maximum: they bound model sizes and kernel tiles. */
const REQUESTED_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxUniformBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxBindGroups",
  "maxBindingsPerBindGroup",
  "minUniformBufferOffsetAlignment",
  "minStorageBufferOffsetAlignment",
] as const;

export class Gpu {
  readonly device: GPUDevice;
  readonly adapter: AdapterSummary;
  readonly hasF16: boolean;
  /** Alignment of a uniform binding offset (256 on most discrete GPUs). */
  readonly uniformAlign: number;
  /** Alignment of a storage binding offset. */
  readonly storageAlign: number;
  readonly maxBufferSize: number;
  readonly maxBindingSize: number;
  readonly maxWorkgroupsPerDim: number;
  /**
   * Invocations per subgroup when the device runs subgroup operations at one fixed width over consecutive
   * local invocation indices (checked by a probe kernel when the device opens), else null.
   */
  readonly subgroupSize: number | null;
  private failure: GpuDeviceError | null = null;
  private lostPromise: Promise<never>;

  constructor(device: GPUDevice, adapter: AdapterSummary, subgroupSize: number | null = null) {
    this.device = device;
    this.adapter = adapter;
    this.subgroupSize = subgroupSize;
    this.hasF16 = device.features.has("shader-f16");
    this.uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    this.storageAlign = device.limits.minStorageBufferOffsetAlignment;
    this.maxBufferSize = device.limits.maxBufferSize;
    this.maxBindingSize = device.limits.maxStorageBufferBindingSize;
    this.maxWorkgroupsPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    device.addEventListener("uncapturederror", (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      this.failure ??= new GpuDeviceError(`WebGPU error: ${error.message}`);
    });
    this.lostPromise = device.lost.then((info) => {
      this.failure ??= new GpuDeviceError(`GPU device lost (${info.reason}): ${info.message}`);
      throw this.failure;
    });
    // A rejection nobody awaits would kill the process; callers observe loss through check()/whenLost().
    this.lostPromise.catch(() => {});
  }

  /** Throws the first uncaptured error or device loss seen so far. Called at every submit and readback. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Races a GPU promise (mapAsync, onSubmittedWorkDone) against device loss so nothing waits forever. */
  async guard<T>(work: Promise<T>): Promise<T> {
    const result = await Promise.race([work, this.lostPromise]);
    this.check();
    return result;
  }
}

let current: Promise<Gpu> | null = null;

/**
 * The process-wide GPU. Prefers a hardware adapter; `OSTROTA_ADAPTER=cpu` forces the fallback (CPU) one.
 */
export function getGpu(): Promise<Gpu> {
  current ??= openGpu().catch((err) => {
    current = null;
    throw err;
  });
  return current;
}

async function openGpu(): Promise<Gpu> {
  if (typeof navigator === "undefined" || !navigator.gpu) {
    throw new GpuUnavailableError("This Deno has no WebGPU (navigator.gpu is missing).");
  }
  const forceCpu = (Deno.env.get("OSTROTA_ADAPTER") ?? "").toLowerCase() === "cpu";
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await navigator.gpu.requestAdapter(
      forceCpu ? { forceFallbackAdapter: true } : { powerPreference: "high-performance" },
    );
  } catch (err) {
    throw new GpuUnavailableError(`No WebGPU adapter: ${err instanceof Error ? err.message : err}`);
  }
  if (!adapter) throw new GpuUnavailableError("No WebGPU adapter was found (no Vulkan driver?).");

  const requiredLimits: Record<string, number> = {};
  for (const name of REQUESTED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof value === "number") requiredLimits[name] = value;
  }
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has("shader-f16")) requiredFeatures.push("shader-f16");
  if (adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");
  const width = fixedSubgroupWidth(adapter.info);
  let device: GPUDevice | null = null;
  // Deno's adapter does not list "subgroups" among its features even where the device grants it, so it is
  // asked for whenever the adapter reports one fixed subgroup width, and the plain device taken on refusal.
  if (width !== null) {
    device = await adapter.requestDevice({
      requiredLimits,
      requiredFeatures: [...requiredFeatures, SUBGROUPS],
    }).catch(() => null);
  }
  device ??= await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const subgroupSize = width !== null && device.features.has(SUBGROUPS) && await subgroupsWork(device, width)
    ? width
    : null;

  const limits: Record<string, number> = {};
  for (const name of REQUESTED_LIMITS) {
    limits[name] = (device.limits as unknown as Record<string, number>)[name];
  }
  const info = adapter.info;
  return new Gpu(device, {
    description: info.description || "(no description)",
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    isFallback: Boolean((info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features: [...device.features].sort(),
    limits,
  }, subgroupSize);
}

const SUBGROUPS = "subgroups" as GPUFeatureName;

/**
 * The adapter's subgroup width when it has only one (a power of two from 4 to 128), so kernels can be written
 * for it; `OSTROTA_SUBGROUPS=0` turns subgroup kernels off.
 */
function fixedSubgroupWidth(info: GPUAdapterInfo): number | null {
  if (Deno.env.get("OSTROTA_SUBGROUPS") === "0") return null;
  const { subgroupMinSize: min, subgroupMaxSize: max } = info as unknown as Record<
    string,
    number | undefined
  >;
  if (min === undefined || min !== max || min < 4 || min > 128 || (min & (min - 1)) !== 0) return null;
  return min;
}

/** Workgroup size of the subgroup probe: the largest the kernels use. */
const PROBE_THREADS = 512;

/**
 * Whether subgroups behave as the kernels assume: `width` invocations each, local invocation i at subgroup lane
 * i % width, subgroupAdd and subgroupShuffleXor exact. Checked once, on a probe dispatch, when the device opens.
 */
async function subgroupsWork(device: GPUDevice, width: number): Promise<boolean> {
  device.pushErrorScope("validation");
  const module = device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> out: array<vec4<u32>>;
@compute @workgroup_size(${PROBE_THREADS})
fn main(@builtin(local_invocation_index) i: u32, @builtin(subgroup_size) size: u32,
    @builtin(subgroup_invocation_id) lane: u32) {
  out[i] = vec4<u32>(size, lane, subgroupAdd(1u), subgroupShuffleXor(i, 1u));
}`,
  });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const bytes = PROBE_THREADS * 16;
  const out = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const staging = device.createBuffer({
    size: bytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(
      0,
      device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: out } }],
      }),
    );
    pass.dispatchWorkgroups(1);
    pass.end();
    encoder.copyBufferToBuffer(out, 0, staging, 0, bytes);
    device.queue.submit([encoder.finish()]);
    if (await device.popErrorScope()) return false;
    await staging.mapAsync(GPUMapMode.READ);
    const got = new Uint32Array(staging.getMappedRange());
    for (let i = 0; i < PROBE_THREADS; i++) {
      const [size, lane, sum, swapped] = got.subarray(4 * i, 4 * i + 4);
      if (size !== width || lane !== i % width || sum !== width || swapped !== (i ^ 1)) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
    out.destroy();
    staging.destroy();
  }
}
