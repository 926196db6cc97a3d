/**
 * GPU timing and the matmul tuner built on it: samples are long passes on a warmed-up GPU, and tuning picks one
 * of the candidate tiles without changing a product's result.
 */
import assert from "node:assert/strict";
import { matmul, TILE_CANDIDATES } from "../../compute/matmul.ts";
import { tuneMatmul } from "../../compute/matmul_tune.ts";
import { initRuntime } from "../../compute/runtime.ts";
import { axpby } from "../../compute/elementwise.ts";
import { keep, tensor } from "../../compute/tensor.ts";
import { timeCalls } from "../../compute/timing.ts";
import { counterPair, gpuTest, randn } from "./harness.ts";

gpuTest("timeCalls: a median per call from passes of many calls, after warm-up passes", async () => {
  const rt = await initRuntime();
  const [x, y] = counterPair(4096);
  let calls = 0;
  const ms = await timeCalls(rt, () => {
    calls++;
    axpby(x, y, 1, 1);
  }, 3);
  assert.ok(Number.isFinite(ms) && ms > 0, `per-call time ${ms} ms`);
  // One lone call, one calibration call, then warm-up passes and three sample passes of the same size.
  const perPass = (calls - 2) / 4;
  assert.ok(perPass >= 1, `${calls} calls`);
  assert.equal((await x.toArray())[0], calls, "every call ran");
  x.dispose();
  y.dispose();
});

gpuTest(
  "tuneMatmul: picks a candidate tile per product, and the product's result does not change",
  async () => {
    // An unusual shape, so that no other test's product is affected by the tile installed for it; k < 512, so the
    // product is never split and every tile accumulates in the same order.
    const [m, n, k] = [72, 40, 56];
    const a = keep(tensor(Float32Array.from(randn(m * k, 61)), [m, k]));
    const b = keep(tensor(Float32Array.from(randn(n * k, 62)), [n, k]));
    const product = async () => {
      const c = matmul(a, b, { transB: true });
      const values = await c.toArray();
      c.dispose();
      return values;
    };
    const before = await product();
    const chosen = await tuneMatmul([{ m, n, k, transB: true }], 1);
    assert.equal(chosen.length, 1);
    assert.ok(TILE_CANDIDATES.includes(chosen[0].tile), JSON.stringify(chosen[0].tile));
    assert.ok(chosen[0].ms > 0);
    assert.deepEqual(await product(), before);
    a.dispose();
    b.dispose();
  },
);
