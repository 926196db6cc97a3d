/**
 * `deno run -A bench/gemv_sweep.ts`: GPU time (timestamp queries) of the decode GEMV in every layout
 * (compute/gemv.ts's GEMV_LAYOUTS) at the seed models' shapes, for choosing gemvLayout's rule on a new GPU.
 * Prints GB/s of weight bytes per (shape, layout), the default layout marked; --quick: small shapes (a smoke
 * test on the CPU driver); --shape I: only the I-th shape. Each run reads
 * the next of several copies of the weight, 192 MB or more in all, so weights come from memory as in decoding
 * rather than from the GPU's L2 cache (50 MB on an H100/H200), which would hold a single copy of most shapes.
 */
import {
  GEMV_LAYOUTS,
  gemvInto,
  type GemvLayout,
  gemvLayout,
  type GemvWeight,
  type Nf4Scales,
} from "../compute/gemv.ts";
import { disposeNf4, nf4Bytes, quantizeNf4 } from "../compute/nf4.ts";
import { fillNormal } from "../compute/random.ts";
import { initRuntime } from "../compute/runtime.ts";
import { empty, keep } from "../compute/tensor.ts";
import { coldCopies, timeCalls } from "../compute/timing.ts";

type Storage = GemvWeight | "nf4-double";
const SHAPES: [Storage, number, number][] = Deno.args.includes("--quick")
  ? [["nf4-double", 512, 1024], ["f16", 256, 512]]
  : [
    ["nf4-double", 3584, 18944],
    ["nf4-double", 18944, 3584],
    ["nf4", 18944, 3584],
    ["nf4", 3584, 18944],
    ["nf4-double", 3584, 3584],
    ["nf4-double", 512, 3584],
    ["f16", 152064, 3584],
    ["f16", 50264, 768],
    ["f16", 2304, 768],
    ["f16", 3072, 768],
    ["f16", 768, 3072],
  ];

const only = Deno.args.includes("--shape") ? Number(Deno.args[Deno.args.indexOf("--shape") + 1]) : null;

const rt = await initRuntime();
console.log(`adapter: ${rt.gpu.adapter.description}`);
for (const [storage, n, k] of only === null ? SHAPES : [SHAPES[only]]) {
  const x = fillNormal(keep(empty([1, k])), 2, 1);
  const y = keep(empty([n]));
  const copies: { run: (layout: GemvLayout) => void; bytes: number; release: () => void }[] = [];
  const copy = async (seed: number) => {
    if (storage === "f32" || storage === "f16") {
      const weight = fillNormal(keep(empty([n, k], storage)), seed, 0.02);
      return {
        run: (layout: GemvLayout) =>
          gemvInto(y.range, x.range, weight.range, storage, n, k, null, false, null, layout),
        bytes: weight.bytes,
        release: () => weight.dispose(),
      };
    }
    const w = fillNormal(keep(empty([n, k])), seed, 0.02);
    const q = await quantizeNf4(w, storage === "nf4-double");
    w.dispose();
    const scales: Nf4Scales = q.absmax ? { kind: "f32", absmax: q.absmax.range } : {
      kind: "double",
      q: q.double!.q.range,
      code: q.double!.code.range,
      absmax2: q.double!.absmax2.range,
      offset: q.double!.offset,
    };
    return {
      run: (layout: GemvLayout) =>
        gemvInto(y.range, x.range, q.packed.range, "nf4", n, k, null, false, scales, layout),
      bytes: nf4Bytes(q),
      release: () => disposeNf4(q),
    };
  };
  copies.push(await copy(1));
  const bytes = copies[0].bytes;
  const count = coldCopies(bytes);
  while (copies.length < count) copies.push(await copy(copies.length + 1));
  let turn = 0;
  const run = (layout: GemvLayout) => copies[turn++ % copies.length].run(layout);
  const release = () => copies.forEach((c) => c.release());
  const chosen = gemvLayout(n, k, storage === "nf4-double" ? "nf4" : storage);
  const results: string[] = [];
  for (const layout of GEMV_LAYOUTS) {
    const ms = await timeCalls(rt, () => run(layout), 3);
    const mark = layout.lanes === chosen.lanes && layout.rowsPerThread === chosen.rowsPerThread ? " *" : "";
    results.push(
      `${storage} ${n}x${k} lanes ${layout.lanes} rows ${layout.rowsPerThread}: ` +
        `${(ms * 1000).toFixed(1)} us ${(bytes / ms / 1e6).toFixed(0)} GB/s${mark}`,
    );
  }
  console.log(results.join("\n"));
  release();
  for (const t of [x, y]) t.dispose();
}
