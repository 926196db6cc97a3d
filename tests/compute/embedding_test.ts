import assert from "node:assert/strict";
import { backward, noGrad } from "../../compute/autograd.ts";
import { embedding } from "../../compute/embedding.ts";
import { keep, tensor, tidy } from "../../compute/tensor.ts";
import { assertClose, checkOp, gpuTest, randn, rng, runtime } from "./harness.ts";

/** A gather is exact; the table gradient sums at most ~40 f32 values per element. */
const TOL = { forward: 0, grad: 1e-6 };

function gatherRef(ids: Int32Array, table: Float64Array, vocab: number, cols: number): Float64Array {
  const out = new Float64Array(ids.length * cols);
  ids.forEach((id, t) => {
    const row = Math.min(Math.max(id, 0), vocab - 1);
    for (let c = 0; c < cols; c++) out[t * cols + c] = table[row * cols + c];
  });
  return out;
}

/** Ids drawn from few rows (many repeats, some rows unused), plus out-of-range ids that clamp to 0 and V-1. */
function randomIds(n: number, vocab: number, seed: number): Int32Array {
  const next = rng(seed);
  const ids = Int32Array.from({ length: n }, () => Math.floor(next() * vocab * 0.8));
  ids[1] = -5;
  ids[n - 2] = vocab + 7;
  return ids;
}

gpuTest("embedding: gather forward and scatter-add backward to the table", async () => {
  for (
    const [i, [idShape, vocab, cols]] of ([[[3, 13], 11, 37], [[300], 40, 5], [[2], 1, 300]] as const)
      .entries()
  ) {
    const tokens = idShape.reduce((a: number, b: number) => a * b, 1);
    const ids = randomIds(tokens, vocab, 3 + i);
    const idTensor = tensor(ids, idShape, "i32");
    try {
      await checkOp(
        `embedding ids ${JSON.stringify(idShape)} table [${vocab}, ${cols}]`,
        [{ data: randn(vocab * cols, 5 + i), shape: [vocab, cols] }],
        (table) => embedding(idTensor, table),
        (table) => gatherRef(ids, table, vocab, cols),
        TOL,
      );
    } finally {
      idTensor.dispose();
    }
  }
});

gpuTest("embedding: the table gradient is bitwise identical across runs", async () => {
  const [vocab, cols, tokens] = [17, 33, 500];
  const ids = randomIds(tokens, vocab, 9);
  const results: Float32Array[] = [];
  for (let run = 0; run < 2; run++) {
    const table = keep(tensor(Float32Array.from(randn(vocab * cols, 1)), [vocab, cols]));
    table.requiresGrad = true;
    tidy(() => {
      const out = embedding(tensor(ids, [tokens], "i32"), table);
      backward(out, tensor(Float32Array.from(randn(tokens * cols, 2)), [tokens, cols]));
    });
    results.push((await table.grad!.read()) as Float32Array);
    table.dispose();
  }
  assert.deepEqual(results[0], results[1]);
});

gpuTest("embedding: f16 table gathers to f32", async () => {
  const [vocab, cols] = [9, 70];
  const half = Float16Array.from(randn(vocab * cols, 4));
  const ids = randomIds(23, vocab, 8);
  const out = tidy(() =>
    noGrad(() =>
      embedding(tensor(ids, [23], "i32"), tensor(new Uint16Array(half.buffer), [vocab, cols], "f16"))
    )
  );
  assertClose("f16 gather", await out.toArray(), gatherRef(ids, Float64Array.from(half), vocab, cols), 0);
  out.dispose();
});

gpuTest("embedding: dtype and shape errors throw before any dispatch", () => {
  tidy(() => {
    const table = tensor(new Float32Array(12), [3, 4]);
    const ids = tensor(new Int32Array(5), [5], "i32");
    const floatIds = tensor(new Float32Array(5), [5]);
    const flatTable = tensor(new Float32Array(12), [12]);
    const before = runtime().dispatchCount;
    assert.throws(() => embedding(floatIds, table), TypeError);
    assert.throws(() => embedding(ids, ids), TypeError);
    assert.throws(() => embedding(ids, flatTable), { name: "RangeError", message: /\[12\].*\[5\]/ });
    assert.equal(runtime().dispatchCount, before, "a rejected call dispatched work");
  });
  return Promise.resolve();
});
