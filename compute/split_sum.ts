/**
 * Split-K's second pass, shared by the GEMM (compute/matmul.ts) and the GEMV over several rows of x
 * (compute/gemv.ts): a product whose reduction was cut into layers of workgroups writes each layer's partial
 * sums [S, M, N], and this adds them (+ bias) (+ out's old value) into out [M, N].
 */
import { type BufferRange, type KernelSpec, Params, rt } from "./runtime.ts";

const SPLIT_SUM: KernelSpec = {
  file: new URL("./split_sum.wgsl", import.meta.url),
  entry: "main",
  bindings: ["read", "read", "write"],
};

/** out [m, n] (+)= sum over its `layers` layers of partial [layers, m, n] (+ bias [n]). */
export function splitSumInto(
  partial: BufferRange,
  layers: number,
  out: BufferRange,
  m: number,
  n: number,
  bias: BufferRange | null,
  accumulate: boolean,
): void {
  rt().dispatch(
    SPLIT_SUM,
    new Params().u32(m * n, n, layers, bias ? 1 : 0, accumulate ? 1 : 0),
    [partial, bias ?? partial, out],
    Math.ceil((m * n) / 256),
  );
}
