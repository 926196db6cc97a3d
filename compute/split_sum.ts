/**
 * Split-K's second pass, shared by the GEMM (matmul.ts) and the decode GEMV (gemv.ts): the layers' partial
 * products summed in layer order, with the bias, a residual and accumulation applied once.
 */
import { type BufferRange, type KernelSpec, Params, rt } from "./runtime.ts";

const SPEC: KernelSpec = {
  file: new URL("./split_sum.wgsl", import.meta.url),
  entry: "main",
  bindings: ["read", "read", "read", "write"],
};

/**
 * out [M, N] (+)= sum over layers of partial [layers, M, N] (+ bias [N]) (+ residual [M, N]); `accumulate` adds
 * out's previous contents.
 */
export function splitSumInto(
  out: BufferRange,
  partial: BufferRange,
  layers: number,
  m: number,
  n: number,
  bias: BufferRange | null,
  residual: BufferRange | null,
  accumulate: boolean,
): void {
  rt().dispatch(
    SPEC,
    new Params().u32(m * n, n, layers, bias ? 1 : 0, accumulate ? 1 : 0, residual ? 1 : 0),
    [partial, bias ?? partial, residual ?? partial, out],
    Math.ceil((m * n) / 256),
  );
}
