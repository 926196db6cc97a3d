/**
 * Per-GPU tile tuning for matmul: times every candidate tile on the products a model will run (GPU timestamps,
 * on a GPU whose clock is up: compute/timing.ts) and installs the fastest for each. All candidates accumulate k in the same order, so tuning changes speed,
 * never results.
 */
import {
  matmulInto,
  type PackedNf4Matrix,
  setTunedTile,
  type Tile,
  TILE_CANDIDATES,
  tileFits,
  tileKey,
} from "./matmul.ts";
import { disposeNf4, quantizeNf4 } from "./nf4.ts";
import { fillNormal } from "./random.ts";
import { rt } from "./runtime.ts";
import { empty, keep } from "./tensor.ts";
import { timeCalls } from "./timing.ts";

export interface GemmShape {
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  /** Storage of B: f32 (default) or NF4 (a [n, k] weight, transB). */
  b?: "f32" | "nf4";
}

export interface TunedShape extends GemmShape {
  tile: Tile;
  ms: number;
}

/** Measures each candidate tile on each shape and keeps the fastest; returns what it chose. */
export async function tuneMatmul(shapes: GemmShape[], reps = 3): Promise<TunedShape[]> {
  const runtime = rt();
  const chosen: TunedShape[] = [];
  for (const shape of shapes) {
    const { m, n, k, transA = false, transB = false, b = "f32" } = shape;
    const a = fillNormal(keep(empty(transA ? [k, m] : [m, k], "f32", "tuning")), 1, 1);
    const c = keep(empty([m, n], "f32", "tuning"));
    const dense = fillNormal(keep(empty(transB ? [n, k] : [k, n], "f32", "tuning")), 2, 0.05);
    const nf4 = b === "nf4" ? await quantizeNf4(dense) : null;
    const operand = nf4
      ? { kind: "nf4", shape: nf4.shape, packed: nf4.packed, absmax: nf4.absmax! } as PackedNf4Matrix
      : dense;
    let best: TunedShape | null = null;
    for (const tile of TILE_CANDIDATES) {
      if (!tileFits(tile)) continue;
      if (!runtime.gpu.device.features.has("timestamp-query")) break;
      const ms = await timeCalls(runtime, () => matmulInto(c, a, operand, { transA, transB, tile }), reps);
      if (!best || ms < best.ms) best = { ...shape, tile, ms };
    }
    if (best) {
      setTunedTile(tileKey(m, n, k, transA, transB, b), best.tile);
      chosen.push(best);
    }
    for (const t of [a, c, dense]) t.dispose();
    if (nf4) disposeNf4(nf4);
  }
  return chosen;
}
