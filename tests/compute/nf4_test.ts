import assert from "node:assert/strict";
import { backward } from "../../compute/autograd.ts";
import {
  dequantizeNf4,
  disposeNf4,
  dynamicMap,
  NF4_LEVELS,
  nf4Absmax,
  nf4Bytes,
  nf4Linear,
  quantizeNf4,
  releaseNf4DecodeScales,
} from "../../compute/nf4.ts";
import { GEMV_MAX_X_ROWS, gemvLayout } from "../../compute/gemv.ts";
import { rt } from "../../compute/runtime.ts";
import { keep, tensor, tidy } from "../../compute/tensor.ts";
import { assertClose, gpuTest, randn, withF16Levels } from "./harness.ts";

const f = Math.fround;

/** Reference of bitsandbytes' NF4 blockwise quantisation, with the kernel's f32 rounding of x / absmax. */
function quantizeRef(x: Float64Array): { codes: number[]; absmax: number[] } {
  const codes: number[] = [];
  const absmax: number[] = [];
  const mids = NF4_LEVELS.slice(1).map((l, c) => f(0.5 * f(f(NF4_LEVELS[c]) + f(l))));
  for (let start = 0; start < x.length; start += 64) {
    const block = x.subarray(start, Math.min(start + 64, x.length));
    const amax = block.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    absmax.push(amax);
    const inv = amax > 0 ? f(1 / amax) : 0;
    for (const v of block) {
      const scaled = f(v * inv);
      let code = 0;
      for (let c = 1; c < 16; c++) if (scaled > mids[c - 1]) code = c;
      codes.push(code);
    }
  }
  return { codes, absmax };
}

/** Unpacks bitsandbytes' byte layout: first element of each byte in the high nibble. */
function unpack(words: Uint32Array, n: number): number[] {
  const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  return Array.from({ length: n }, (_, e) => (e % 2 === 0 ? bytes[e >> 1] >> 4 : bytes[e >> 1] & 15));
}

gpuTest("nf4: quantisation matches the reference exactly (codes, absmax, packing)", async () => {
  for (const [rows, cols] of [[7, 64], [13, 37], [3, 200]]) {
    const data = randn(rows * cols, rows * 31 + cols, 2);
    data[5] = 0;
    const w = keep(tensor(Float32Array.from(data), [rows, cols]));
    const q = await quantizeNf4(w);
    const ref = quantizeRef(data);
    const codes = unpack((await q.packed.read()) as Uint32Array, data.length);
    const mismatch = codes.findIndex((c, i) => c !== ref.codes[i]);
    if (mismatch >= 0) {
      throw new Error(`code ${mismatch}: got ${codes[mismatch]}, want ${ref.codes[mismatch]}`);
    }
    const absmax = Array.from((await q.absmax!.read()) as Float32Array);
    assertClose("absmax", absmax, ref.absmax, 0);
    // Dequantisation is exact: level (f32) times absmax (f32), rounded once.
    const deqTensor = dequantizeNf4(q);
    const deq = await deqTensor.read();
    deqTensor.dispose();
    const want = ref.codes.map((c, i) => f(f(NF4_LEVELS[c]) * f(ref.absmax[Math.floor(i / 64)])));
    assertClose("dequantised", Array.from(deq), want, 0);
    // Quantising the dequantised weights gives back the same codes.
    const again = keep(tensor(deq as Float32Array, [rows, cols]));
    const q2 = await quantizeNf4(again);
    const codes2 = unpack((await q2.packed.read()) as Uint32Array, data.length);
    if (codes2.some((c, i) => c !== codes[i])) {
      throw new Error("re-quantising the dequantised weights changed codes");
    }
    for (const t of [w, again]) t.dispose();
    disposeNf4(q);
    disposeNf4(q2);
  }
});

gpuTest("nf4: the dynamic 8-bit map is bitsandbytes' (256 sorted values, signed, 0 and ±1 present)", () => {
  const map = dynamicMap(true);
  if (map.length !== 256) throw new Error(`length ${map.length}`);
  for (let i = 1; i < 256; i++) if (!(map[i] >= map[i - 1])) throw new Error(`not sorted at ${i}`);
  if (map[255] !== 1 || !map.includes(0)) throw new Error("1 or 0 missing");
  // bitsandbytes' signed map: 127 negative values, the smallest -0.99297... (= -(0.1 + 0.9 * 63.5 / 64)).
  if (map.filter((v) => v < 0).length !== 127) throw new Error("expected 127 negative values");
  if (Math.abs(map[0] + 0.99296875) > 1e-6) throw new Error(`lowest value ${map[0]}`);
  return Promise.resolve();
});

gpuTest("nf4: double quantisation of absmax matches the reference within one 8-bit step", async () => {
  const rows = 40, cols = 900; // 562 absmax values: three 256-blocks, the last partial
  const data = randn(rows * cols, 4242, 3);
  const w = keep(tensor(Float32Array.from(data), [rows, cols]));
  const single = await quantizeNf4(w);
  const exact = Array.from((await single.absmax!.read()) as Float32Array);
  const dq = await quantizeNf4(w, true);
  const widened = nf4Absmax(dq);
  const approx = Array.from((await widened.read()) as Float32Array);
  widened.dispose();
  // Reference: nearest entry of the map for (absmax - mean) / blockmax, then back.
  const code = dynamicMap(true);
  const offset = f(exact.reduce((a, b) => a + b, 0) / exact.length);
  const ref = exact.map((_, i) => {
    const block = exact.slice(Math.floor(i / 256) * 256, Math.floor(i / 256) * 256 + 256);
    const amax2 = block.reduce((m, v) => Math.max(m, Math.abs(v - offset)), 0);
    const x = (exact[i] - offset) / amax2;
    let best = 0;
    for (let c = 1; c < 256; c++) if (Math.abs(code[c] - x) < Math.abs(code[best] - x)) best = c;
    return code[best] * amax2 + offset;
  });
  assertClose("double-quantised absmax", approx, ref, 1e-6);
  // The 8-bit map's error stays well under the spread of absmax values.
  assertClose("double-quantised vs exact absmax", approx, exact, 2e-2);
  w.dispose();
  disposeNf4(single);
  disposeNf4(dq);
});

gpuTest(
  "nf4: linear forward and input gradient read the packed weights (vs f64 on the dequantised matrix)",
  async () => {
    // n = 1 takes the decode GEMV, n = 9 the tiled GEMM.
    // The last case is large enough for the 128x64 NF4 tile.
    for (const [n, inp, out] of [[9, 70, 33], [1, 224, 19], [1, 8192, 6], [2048, 64, 1040]]) {
      await linearCase(n, inp, out);
    }
  },
);

async function linearCase(n: number, inp: number, out: number): Promise<void> {
  const w = keep(tensor(Float32Array.from(randn(out * inp, 5)), [out, inp]));
  for (const doubleQuant of [false, true]) {
    const q = await quantizeNf4(w, doubleQuant);
    const deq = dequantizeNf4(q);
    const wd = Array.from(await deq.read());
    deq.dispose();
    // One row takes the decode GEMV, which reads the levels rounded to f16 where its layout has a pair table.
    const forwardWeight = n === 1 && gemvLayout(out, inp, "nf4").pairCopies ? withF16Levels(wd) : wd;
    const xData = randn(n * inp, 6);
    const bias = keep(tensor(Float32Array.from(randn(out, 8)), [out]));
    const x = keep(tensor(Float32Array.from(xData), [n, inp]));
    x.requiresGrad = true;
    const y = keep(tidy(() => nf4Linear(x, q, bias)));
    const want = new Float64Array(n * out);
    const biasData = await bias.read();
    for (let i = 0; i < n; i++) {
      for (let o = 0; o < out; o++) {
        let s = biasData[o];
        for (let k = 0; k < inp; k++) s += xData[i * inp + k] * forwardWeight[o * inp + k];
        want[i * out + o] = s;
      }
    }
    assertClose(`forward (doubleQuant=${doubleQuant})`, await y.toArray(), want, 1e-6);
    const gData = randn(n * out, 7);
    const g = keep(tensor(Float32Array.from(gData), [n, out]));
    backward(y, g);
    const gxWant = new Float64Array(n * inp);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < inp; k++) {
        let s = 0;
        for (let o = 0; o < out; o++) s += gData[i * out + o] * wd[o * inp + k];
        gxWant[i * inp + k] = s;
      }
    }
    assertClose("input gradient", await x.grad!.toArray(), gxWant, 1e-6);
    for (const t of [x, y, g, bias]) t.dispose();
    disposeNf4(q);
  }
  w.dispose();
}

gpuTest(
  "nf4: decoding with widened scales: the same product as the stored 8-bit scales, one f32 copy kept (by a " +
    "GEMV or a product of up to 16 rows alike), not by longer products, dropped when the weight enters a training " +
    "graph",
  async () => {
    const [out, inp] = [37, 512];
    const w = keep(tensor(Float32Array.from(randn(out * inp, 21)), [out, inp]));
    const q = await quantizeNf4(w, true);
    const stored = nf4Bytes(q);
    const x = keep(tensor(Float32Array.from(randn(inp, 22)), [1, inp]));
    const viaStored = keep(tidy(() => nf4Linear(x, q, null, "stored")));
    if (q.decodeAbsmax) throw new Error("reading the stored scales widened them");
    const viaWidened = keep(tidy(() => nf4Linear(x, q, null, "widened")));
    const copy = q.decodeAbsmax;
    if (!copy || nf4Bytes(q) !== stored + Math.ceil(out * inp / 64) * 4) {
      throw new Error(`expected one f32 scale per 64 weights kept, holds ${nf4Bytes(q) - stored} bytes more`);
    }
    tidy(() => nf4Linear(x, q, null, "widened")).dispose();
    if (q.decodeAbsmax !== copy) throw new Error("the widened scales were made again");
    // A prefill (several rows, no gradient) reads the kept copy instead of widening the scales for the call.
    const rows = keep(tensor(Float32Array.from(randn(3 * inp, 24)), [3, inp]));
    const prefillDispatches = () => {
      const before = rt().dispatchCount;
      tidy(() => nf4Linear(rows, q, null, "widened")).dispose();
      return rt().dispatchCount - before;
    };
    const withCopy = prefillDispatches();
    releaseNf4DecodeScales(q);
    const widening = prefillDispatches();
    assert.ok(
      withCopy < widening,
      `a prefill with the kept copy took ${withCopy} dispatches, ${widening} without`,
    );
    // That prefill kept what it widened (batched decoding reads it every step): the next one reads the copy.
    assert.ok(q.decodeAbsmax, "a prefill with widened scales did not keep them");
    assert.equal(prefillDispatches(), withCopy);
    // More rows than batched decoding takes (a long prefill, a checkpointed training forward): widened for the
    // call only, so a model's training peak holds no widened copies.
    releaseNf4DecodeScales(q);
    const long = keep(
      tensor(Float32Array.from(randn((GEMV_MAX_X_ROWS + 1) * inp, 25)), [GEMV_MAX_X_ROWS + 1, inp]),
    );
    tidy(() => nf4Linear(long, q, null, "widened")).dispose();
    assert.equal(q.decodeAbsmax, null, `a ${GEMV_MAX_X_ROWS + 1}-row product kept the widened scales`);
    // Widening computes the f32 absmax the stored path computes per chunk (equal up to how a compiler fuses
    // code * absmax2 + offset).
    assertClose("widened vs stored", await viaWidened.toArray(), Array.from(await viaStored.read()), 1e-6);
    const xTrain = keep(tensor(Float32Array.from(randn(2 * inp, 23)), [2, inp]));
    xTrain.requiresGrad = true;
    const y = keep(tidy(() => nf4Linear(xTrain, q, null, "widened")));
    if (q.decodeAbsmax || nf4Bytes(q) !== stored) {
      throw new Error("a training forward kept the widened scales");
    }
    for (const t of [w, x, viaStored, viaWidened, xTrain, y, rows, long]) t.dispose();
    disposeNf4(q);
  },
);

gpuTest("nf4: a shape mismatch is refused before any dispatch", async () => {
  const w = keep(tensor(Float32Array.from(randn(64, 1)), [8, 8]));
  const q = await quantizeNf4(w);
  const x = keep(tensor(new Float32Array(10), [2, 5]));
  let message = "";
  try {
    nf4Linear(x, q);
  } catch (err) {
    message = (err as Error).message;
  }
  if (!message.includes("[2, 5]") || !message.includes("[8, 8]")) throw new Error(`unexpected: ${message}`);
  for (const t of [w, x]) t.dispose();
  disposeNf4(q);
});
