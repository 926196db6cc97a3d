/**
 * Streams a checkpoint's tensors to the GPU one at a time, checking each name and shape against what the
 * architecture expects, so a wrong or truncated folder fails with the file and tensor named.
 */
import { keep, shapeString, type Tensor, tensor } from "../../compute/tensor.ts";
import type { Checkpoint } from "../checkpoint/mod.ts";

/** How weights live on the GPU: f32 (trainable or exact) or f16 (frozen, half the memory). */
export type WeightDType = "f32" | "f16";

/** Where a model's tensors come from: a checkpoint on disk, or random initialisation (benchmarks). */
export interface WeightSource {
  has(name: string): boolean;
  /** Host data of a tensor (checked against `shape`). */
  host(name: string, shape: number[], as?: "f32" | "f16"): Promise<Float32Array | Uint16Array>;
  /** A GPU tensor in `dtype`, kept outside tidy scopes. */
  load(name: string, shape: number[], dtype?: WeightDType): Promise<Tensor>;
}

export class WeightLoader implements WeightSource {
  constructor(readonly checkpoint: Checkpoint, readonly source: string) {}

  has(name: string): boolean {
    return this.checkpoint.has(name);
  }

  /** Reads a tensor to the host, checking its shape. */
  async host(name: string, shape: number[], as: "f32" | "f16" = "f32"): Promise<Float32Array | Uint16Array> {
    const info = this.checkpoint.info(name);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new RangeError(
        `${this.source}: tensor "${name}" has shape ${shapeString(info.shape)}, the config implies ${
          shapeString(shape)
        }`,
      );
    }
    const host = await this.checkpoint.read(name, { as });
    return host.data as Float32Array | Uint16Array;
  }

  /** Reads a tensor straight to the GPU in the given dtype (kept outside tidy scopes). */
  async load(name: string, shape: number[], dtype: WeightDType = "f32"): Promise<Tensor> {
    const data = await this.host(name, shape, dtype);
    const t = keep(tensor(data, shape, dtype, "weights"));
    t.name = name;
    return t;
  }
}

/** Transposes a row-major [rows, cols] host matrix (GPT-2's Conv1D stores [in, out]). */
export function transposeHost(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}
