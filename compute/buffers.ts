/**
 * GPU buffer pool with byte accounting. Buffers are recycled by size class so a training step that frees and
 * re-allocates the same activations every step does not go back to the driver; `trim()` hands pooled buffers
 * back (cancelling a run frees its memory).
 */
import type { Gpu } from "./gpu.ts";

export interface MemoryStats {
  /** Bytes held by live tensors. */
  liveBytes: number;
  /** Highest liveBytes since the last resetPeak(). */
  peakLiveBytes: number;
  /** Bytes the pool holds for reuse (allocated on the GPU, not in use). */
  pooledBytes: number;
  /** Bytes allocated on the GPU in all (live + pooled). */
  allocatedBytes: number;
  peakAllocatedBytes: number;
  /** Live bytes by tag ("weights", "activations", "grads", "optimizer", ...). */
  byTag: Record<string, number>;
}

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** A pooled GPU buffer; `bytes` is what was asked for, `buffer.size` the size class. */
export interface PooledBuffer {
  readonly buffer: GPUBuffer;
  readonly bytes: number;
  tag: string;
  readonly id: number;
}

/**
 * Size classes: 256-byte granularity below 64 KiB, then 8 steps per power of two, so at most 12.5 % is wasted
 * and repeated shapes land in the same class.
 */
export function sizeClass(bytes: number): number {
  const minimum = Math.max(bytes, 4);
  if (minimum <= 65536) return Math.ceil(minimum / 256) * 256;
  const pow = 2 ** Math.floor(Math.log2(minimum));
  const step = pow / 8;
  return Math.ceil(minimum / step) * step;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private nextId = 1;
  private live = 0;
  private peakLive = 0;
  private pooled = 0;
  private peakAllocated = 0;
  private tags = new Map<string, number>();
  /** Buffers released during a hold (see holdReleases), in release order. */
  private held: PooledBuffer[] | null = null;

  constructor(private gpu: Gpu) {}

  alloc(bytes: number, tag: string): PooledBuffer {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`buffer size must be >= 0, got ${bytes}`);
    const size = sizeClass(bytes);
    if (size > this.gpu.maxBufferSize || bytes > this.gpu.maxBindingSize) {
      throw new RangeError(
        `a ${bytes}-byte tensor is over this device's limit (maxBufferSize ${this.gpu.maxBufferSize}, ` +
          `maxStorageBufferBindingSize ${this.gpu.maxBindingSize} bytes): split it or use a smaller shape`,
      );
    }
    let buffer = this.free.get(size)?.pop();
    if (buffer) {
      this.pooled -= size;
    } else {
      this.gpu.check();
      buffer = this.gpu.device.createBuffer({ size, usage: USAGE, label: tag });
    }
    this.live += size;
    this.peakLive = Math.max(this.peakLive, this.live);
    this.peakAllocated = Math.max(this.peakAllocated, this.live + this.pooled);
    this.tags.set(tag, (this.tags.get(tag) ?? 0) + size);
    return { buffer, bytes, tag, id: this.nextId++ };
  }

  release(entry: PooledBuffer): void {
    if (this.held) {
      this.held.push(entry);
      return;
    }
    const size = entry.buffer.size;
    this.live -= size;
    const tagged = (this.tags.get(entry.tag) ?? 0) - size;
    if (tagged === 0) this.tags.delete(entry.tag);
    else this.tags.set(entry.tag, tagged);
    let list = this.free.get(size);
    if (!list) this.free.set(size, list = []);
    list.push(entry.buffer);
    this.pooled += size;
  }

  /**
   * Keeps buffers released from now on in use (live) until the returned function releases them: GPU work
   * encoded now but submitted later may still use them, and work submitted ahead of it must not be given them.
   * One hold at a time.
   */
  holdReleases(): () => void {
    if (this.held) throw new Error("holdReleases: released buffers are already held");
    const held: PooledBuffer[] = [];
    this.held = held;
    return () => {
      if (this.held === held) this.held = null;
      for (const entry of held.splice(0)) this.release(entry);
    };
  }

  /** Moves a live buffer's bytes from one tag to another (e.g. activations kept as a KV cache). */
  retag(entry: PooledBuffer, tag: string): void {
    const size = entry.buffer.size;
    this.tags.set(entry.tag, (this.tags.get(entry.tag) ?? 0) - size);
    if (this.tags.get(entry.tag) === 0) this.tags.delete(entry.tag);
    entry.tag = tag;
    this.tags.set(tag, (this.tags.get(tag) ?? 0) + size);
  }

  /** Destroys every pooled (unused) buffer, returning its memory to the driver. */
  trim(): void {
    for (const list of this.free.values()) for (const buffer of list) buffer.destroy();
    this.free.clear();
    this.pooled = 0;
  }

  resetPeak(): void {
    this.peakLive = this.live;
    this.peakAllocated = this.live + this.pooled;
  }

  stats(): MemoryStats {
    return {
      liveBytes: this.live,
      peakLiveBytes: this.peakLive,
      pooledBytes: this.pooled,
      allocatedBytes: this.live + this.pooled,
      peakAllocatedBytes: this.peakAllocated,
      byTag: Object.fromEntries(this.tags),
    };
  }
}
