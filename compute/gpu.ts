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
  private failure: GpuDeviceError | null = null;
  private lostPromise: Promise<never>;

  constructor(device: GPUDevice, adapter: AdapterSummary) {
    this.device = device;
    this.adapter = adapter;
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
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });

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
  });
}
