/**
 * `deno run -A bench/gemv_sweep.ts`: GPU time (timestamp queries) of the decode GEMV in every layout
 * (compute/gemv.ts's GEMV_LAYOUTS) at the seed models' shapes, for choosing gemvLayout's rule on a new GPU.
 * Prints GB/s of weight bytes per (shape, layout), the default layout marked; --quick: small shapes (a smoke
 * test on the CPU driver); --shape I[,J...]: only those shapes (11 and 13: q/k/v stacked in one dispatch, 12 and
 * 14: gate/up as a SwiGLU pair; "nf4" has f32 scales, as decoding widens them); --rms: x RMS-normalised in the
 * product, as decoding does ahead of q/k/v and gate/up; --pairs C[,C...]: NF4 layouts with each of these copies
 * of the f16 level-pair table ("default" for gemv.ts's choice, 0 for f32 levels; default "0,16"); --x-rows M:
 * M rows of x at once (evaluation's batched decoding, gemvRowsInto; single weights only), --splits S[,S...]: with
 * --x-rows, each layout in S layers of split-K too (default: as many as gemvLayout gives the shape). Each run reads
 * the next of several copies of the weight, 192 MB or more in all, so weights come from memory as in decoding
 * rather than from the GPU's L2 cache (50 MB on an H100/H200), which would hold a single copy of most shapes.
 */
import {
  GEMV_LAYOUTS,
  type GemvLayout,
  gemvLayout,
  gemvRowsInto,
  type GemvSource,
  gemvStackInto,
  gemvSwigluInto,
  type GemvWeight,
} from "../compute/gemv.ts";
import { disposeNf4, nf4Bytes, nf4Scales, quantizeNf4 } from "../compute/nf4.ts";
import { fillNormal } from "../compute/random.ts";
import { initRuntime } from "../compute/runtime.ts";
import { empty, keep } from "../compute/tensor.ts";
import { coldCopies, timeCalls } from "../compute/timing.ts";

type Storage = GemvWeight | "nf4-double";
/** A product: one weight [rows[0], k], or q/k/v-like stacked weights, or a gate/up SwiGLU pair. */
interface Shape {
  storage: Storage;
  rows: number[];
  k: number;
  combine?: "stack" | "swiglu";
}
const one = (storage: Storage, n: number, k: number): Shape => ({ storage, rows: [n], k });
const SHAPES: Shape[] = Deno.args.includes("--quick")
  ? [one("nf4-double", 512, 1024), one("f16", 256, 512), {
    storage: "nf4-double",
    rows: [64, 64],
    k: 256,
    combine: "swiglu",
  }]
  : [
    one("nf4-double", 3584, 18944),
    one("nf4-double", 18944, 3584),
    one("nf4", 18944, 3584),
    one("nf4", 3584, 18944),
    one("nf4-double", 3584, 3584),
    one("nf4-double", 512, 3584),
    one("f16", 152064, 3584),
    one("f16", 50264, 768),
    one("f16", 2304, 768),
    one("f16", 3072, 768),
    one("f16", 768, 3072),
    { storage: "nf4-double", rows: [3584, 512, 512], k: 3584, combine: "stack" },
    { storage: "nf4-double", rows: [18944, 18944], k: 3584, combine: "swiglu" },
    { storage: "nf4", rows: [3584, 512, 512], k: 3584, combine: "stack" },
    { storage: "nf4", rows: [18944, 18944], k: 3584, combine: "swiglu" },
    one("nf4", 3584, 3584),
  ];

const rms = Deno.args.includes("--rms");
/** The list after a flag, comma-separated, or null without the flag. */
function listArg(flag: string): string[] | null {
  return Deno.args.includes(flag) ? Deno.args[Deno.args.indexOf(flag) + 1].split(",") : null;
}
const only = listArg("--shape")?.map(Number) ?? null;
const xRows = Number(listArg("--x-rows")?.[0] ?? 1);
const pairArgs = listArg("--pairs") ?? ["0", "16"];
const splitList = listArg("--splits")?.map(Number) ?? [undefined];
const layouts = GEMV_LAYOUTS.filter((l) =>
  listArg("--layouts")?.includes(`${l.threads}/${l.lanes}/${l.rowsPerThread}`) ?? true
);

/** A random weight [n, k] stored as `storage`: a GEMV source, the bytes it holds, its release. */
async function weight(storage: Storage, n: number, k: number, seed: number) {
  if (storage === "f32" || storage === "f16") {
    const w = fillNormal(keep(empty([n, k], storage)), seed, 0.02);
    const source: GemvSource = { weight: w.range, scales: null, bias: null, rows: n };
    return { source, bytes: w.bytes, release: () => w.dispose() };
  }
  const w = fillNormal(keep(empty([n, k])), seed, 0.02);
  const q = await quantizeNf4(w, storage === "nf4-double");
  w.dispose();
  const source: GemvSource = { weight: q.packed.range, scales: nf4Scales(q), bias: null, rows: n };
  return { source, bytes: nf4Bytes(q), release: () => disposeNf4(q) };
}

const rt = await initRuntime();
console.log(`adapter: ${rt.gpu.adapter.description}`);
for (const { storage, rows, k, combine } of only === null ? SHAPES : only.map((i) => SHAPES[i])) {
  const gemvStorage: GemvWeight = storage === "nf4-double" ? "nf4" : storage;
  if (xRows > 1 && (combine || rms)) throw new RangeError("--x-rows takes single weights without --rms");
  const x = fillNormal(keep(empty([xRows, k])), 2, 1);
  const normWeight = fillNormal(keep(empty([k])), 3, 1);
  const norm = rms ? { kind: "rms" as const, weight: normWeight.range, eps: 1e-6 } : undefined;
  const ys = rows.map((n) => keep(empty([xRows, n])));
  const copy = async (seed: number) => {
    const weights = await Promise.all(rows.map((n, i) => weight(storage, n, k, seed * 8 + i)));
    const sources = weights.map((w) => w.source);
    return {
      run: (layout: GemvLayout) => {
        const options = { storage: gemvStorage, layout, norm };
        if (xRows > 1) gemvRowsInto(ys[0].range, x.range, xRows, sources[0], gemvStorage, k, false, layout);
        else if (combine === "swiglu") {
          gemvSwigluInto(ys[0].range, x.range, k, sources[0], sources[1], options);
        } else gemvStackInto(x.range, k, sources, ys.map((y) => y.range), options);
      },
      bytes: weights.reduce((sum, w) => sum + w.bytes, 0),
      release: () => weights.forEach((w) => w.release()),
    };
  };
  const copies = [await copy(1)];
  const bytes = copies[0].bytes;
  const count = coldCopies(bytes);
  while (copies.length < count) copies.push(await copy(copies.length + 1));
  let turn = 0;
  const run = (layout: GemvLayout) => copies[turn++ % copies.length].run(layout);
  const total = rows.reduce((sum, n) => sum + n, 0);
  const chosen = gemvLayout(combine === "swiglu" ? rows[0] : total, k, gemvStorage, combine, xRows);
  const name = `${storage} ${rows.join("+")}x${k}${combine ? ` ${combine}` : ""}${rms ? " rms" : ""}${
    xRows > 1 ? `, ${xRows} rows of x` : ""
  }`;
  const results: string[] = [];
  // Several rows of x read f32 levels (no pair table).
  const tables = gemvStorage === "nf4" && xRows === 1
    ? pairArgs.map((a) => (a === "default" ? chosen.pairCopies ?? 0 : Number(a)))
    : [undefined];
  const splits = xRows > 1 ? splitList : [undefined];
  for (const copies of tables) {
    for (const layout of layouts.flatMap((l) => splits.map((s) => ({ ...l, splits: s ?? chosen.splits })))) {
      const table = copies === undefined ? "" : ` pairs ${copies}`;
      const split = xRows > 1 ? ` splits ${layout.splits ?? 1}` : "";
      const label =
        `${name} threads ${layout.threads} lanes ${layout.lanes} rows ${layout.rowsPerThread}${split}${table}`;
      let ms: number;
      try {
        ms = await timeCalls(rt, () => run({ ...layout, pairCopies: copies }), 3);
      } catch (e) {
        // An explicit table too large for this layout's workgroup memory.
        if (!(e instanceof RangeError)) throw e;
        results.push(`${label}: ${e.message}`);
        continue;
      }
      const mark = layout.threads === chosen.threads && layout.lanes === chosen.lanes &&
          layout.rowsPerThread === chosen.rowsPerThread && (copies ?? 0) === (chosen.pairCopies ?? 0) &&
          (layout.splits ?? 1) === (chosen.splits ?? 1)
        ? " *"
        : "";
      results.push(`${label}: ${(ms * 1000).toFixed(1)} us ${(bytes / ms / 1e6).toFixed(0)} GB/s${mark}`);
    }
  }
  console.log(results.join("\n"));
  copies.forEach((c) => c.release());
  for (const t of [x, normWeight, ...ys]) t.dispose();
}
