import assert from "node:assert/strict";
import { argmax } from "../../compute/argmax.ts";
import { empty, keep, tensor, tidy } from "../../compute/tensor.ts";
import { argmax as hostArgmax } from "../../lib/generate/sampling.ts";
import { gpuTest, randn, runtime } from "./harness.ts";

/** The host rule (first index of the largest value) row by row. */
function reference(data: Float32Array, cols: number): number[] {
  const out: number[] = [];
  for (let base = 0; base < data.length; base += cols) out.push(hostArgmax(data.subarray(base, base + cols)));
  return out;
}

async function check(label: string, data: Float32Array, rows: number, cols: number): Promise<void> {
  const ids = tidy(() => argmax(tensor(data, [rows, cols])));
  const got = Array.from(await ids.read());
  ids.dispose();
  assert.deepEqual(got, reference(data, cols), label);
}

gpuTest("argmax: random rows, V not a multiple of the workgroup or of 4, V = 1, Qwen's 151936", async () => {
  for (const [i, [rows, cols]] of [[3, 1000], [2, 1025], [4, 257], [5, 3], [2, 1], [1, 151936]].entries()) {
    await check(`random [${rows}, ${cols}]`, Float32Array.from(randn(rows * cols, 10 + i, 8)), rows, cols);
  }
});

gpuTest("argmax: ties go to the first index, within a thread's four and across threads", async () => {
  for (const [i, cols] of [1000, 1025, 151936].entries()) {
    // Values on a coarse grid: every row has many elements equal to its maximum.
    const coarse = Float32Array.from(randn(3 * cols, 20 + i, 3), (v) => Math.round(v));
    await check(`coarse [3, ${cols}]`, coarse, 3, cols);
  }
  const cols = 1031;
  const rows: number[][] = [
    [5, 6], // neighbours in one thread's group of four
    [1030, 4], // the last element and one far earlier
    [1024, 1027], // the tail past 4 x 256
    [700, 300, 1029], // several threads holding the maximum
  ];
  const data = new Float32Array(rows.length * cols).fill(-1);
  rows.forEach((hot, r) => hot.forEach((c) => (data[r * cols + c] = 2)));
  await check("planted ties", data, rows.length, cols);
  const flat = new Float32Array(2 * 300).fill(0.5);
  flat.fill(-Infinity, 300);
  await check("constant rows (0.5 and -inf) give 0", flat, 2, 300);
  const last = Float32Array.from(randn(257, 4));
  last[256] = 9;
  await check("the maximum at V - 1", last, 1, 257);
});

gpuTest(
  "argmax: writes into a given i32 view; dtype and shape errors throw before any dispatch",
  async () => {
    const slots = keep(empty([2 * 64], "i32"));
    const data = Float32Array.from(randn(3 * 50, 3));
    try {
      const view = slots.rows(64, 67);
      const written = tidy(() => argmax(tensor(data, [3, 50]), view));
      assert.equal(written, view);
      assert.deepEqual(Array.from(await view.read()), reference(data, 50));
      view.dispose();
      tidy(() => {
        const logits = tensor(data, [3, 50]);
        const [f32Out, flat, noColumns, ints] = [
          empty([3], "f32"),
          tensor(data, [150]),
          empty([2, 0]),
          tensor(Int32Array.from(data), [3, 50], "i32"),
        ];
        const before = runtime().dispatchCount;
        assert.throws(() => argmax(logits, slots.rows(0, 2)), RangeError);
        assert.throws(() => argmax(logits, f32Out), TypeError);
        assert.throws(() => argmax(flat), RangeError);
        assert.throws(() => argmax(noColumns), RangeError);
        assert.throws(() => argmax(ints), TypeError);
        assert.equal(runtime().dispatchCount, before);
      });
    } finally {
      slots.dispose();
    }
  },
);
