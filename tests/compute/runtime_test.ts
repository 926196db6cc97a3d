/**
 * The engine's failure paths: buffers over the device's limits are refused with the limit named, WebGPU
 * validation errors surface as thrown errors, device loss rejects pending work instead of hanging, the pool
 * accounts bytes by tag and gives pooled memory back on trim, prepared work keeps its place, its parameters and
 * its buffers, and subgroups are taken where the device has them.
 */
import assert from "node:assert/strict";
import { Gpu, GpuDeviceError } from "../../compute/gpu.ts";
import { initRuntime, type KernelSpec } from "../../compute/runtime.ts";
import { workgroupReduceWgsl } from "../../compute/workgroup_reduce.ts";
import { axpby, fill, full } from "../../compute/elementwise.ts";
import { empty, keep, tidy } from "../../compute/tensor.ts";
import { counterPair, gpuTest } from "./harness.ts";

gpuTest("runtime: a tensor over the device's binding limit is refused with the limit named", async () => {
  const rt = await initRuntime();
  const before = rt.dispatchCount;
  const elements = Math.floor(rt.gpu.maxBindingSize / 4) + 1024;
  assert.throws(() => empty([elements]), (err: Error) => {
    assert.ok(err instanceof RangeError);
    assert.match(err.message, /maxStorageBufferBindingSize/);
    assert.match(err.message, new RegExp(String(rt.gpu.maxBindingSize)));
    return true;
  });
  assert.throws(() => empty([2, -3]), RangeError);
  assert.equal(rt.dispatchCount, before, "nothing was dispatched");
});

gpuTest(
  "runtime: a spec rebuilt on every call finds its pipeline by content, a changed define gets its own",
  async () => {
    const rt = await initRuntime();
    const file = new URL("../../compute/softmax.wgsl", import.meta.url);
    const spec = (defines: Record<string, string | number>): KernelSpec => ({
      file,
      entry: "forward",
      bindings: ["read", "write"],
      defines,
    });
    const first = rt.pipeline(spec({ UNUSED: 1, OTHER: "a" }));
    assert.equal(rt.pipeline(spec({ UNUSED: 1, OTHER: "a" })), first);
    assert.equal(rt.pipeline(spec({ OTHER: "a", UNUSED: 1 })), first, "define order is irrelevant");
    assert.notEqual(rt.pipeline(spec({ UNUSED: 2, OTHER: "a" })), first);
    assert.notEqual(rt.pipeline(spec({ UNUSED: 1 })), first);
    assert.notEqual(rt.pipeline(spec({ UNUSED: 1, OTHER: "a", MORE: 0 })), first);
    await rt.sync();
  },
);

gpuTest("runtime: pool accounting by tag, peak, and trim giving pooled bytes back", async () => {
  const rt = await initRuntime();
  const start = rt.pool.stats();
  const a = keep(empty([1000], "f32", "weights"));
  const b = keep(empty([3000], "f32", "grads"));
  const mid = rt.pool.stats();
  assert.ok(mid.byTag.weights >= (start.byTag.weights ?? 0) + 4000);
  assert.ok(mid.byTag.grads >= 12000);
  assert.ok(mid.peakLiveBytes >= mid.liveBytes);
  a.dispose();
  b.dispose();
  const after = rt.pool.stats();
  assert.equal(after.liveBytes, start.liveBytes);
  assert.ok(after.pooledBytes > 0);
  rt.trim();
  assert.equal(rt.pool.stats().pooledBytes, 0);
  await Promise.resolve();
});

/** A second device of the same adapter, so the failures below cannot poison the shared runtime. */
async function scratchGpu(): Promise<Gpu> {
  const adapter = await navigator.gpu.requestAdapter();
  assert.ok(adapter);
  const device = await adapter.requestDevice();
  return new Gpu(device, {
    description: adapter.info.description,
    vendor: adapter.info.vendor,
    architecture: adapter.info.architecture,
    device: adapter.info.device,
    isFallback: false,
    features: [],
    limits: {},
  });
}

Deno.test({
  name: "gpu: an invalid shader surfaces as a thrown GpuDeviceError at the next check",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const gpu = await scratchGpu();
    gpu.device.createShaderModule({ code: "this is not WGSL" });
    await gpu.device.queue.onSubmittedWorkDone();
    // The error event is delivered asynchronously; give it a turn.
    for (let i = 0; i < 50; i++) {
      try {
        gpu.check();
      } catch (err) {
        assert.ok(err instanceof GpuDeviceError);
        assert.match(err.message, /WebGPU error/);
        gpu.device.destroy();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error("the invalid shader was never reported");
  },
});

Deno.test({
  name: "gpu: device loss rejects guarded GPU work instead of hanging",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const gpu = await scratchGpu();
    gpu.device.destroy();
    const never = new Promise<void>(() => {});
    await assert.rejects(gpu.guard(never), (err: Error) => {
      assert.ok(err instanceof GpuDeviceError);
      assert.match(err.message, /device lost/);
      return true;
    });
    assert.throws(() => gpu.check(), GpuDeviceError);
  },
});

gpuTest(
  "runtime: long runs of dispatches are submitted as they come, except inside asOneSubmission",
  async () => {
    const rt = await initRuntime();
    const x = keep(empty([64]));
    const y = keep(empty([64]));
    fill(x, 1);
    fill(y, 1);
    await rt.sync();
    const count = (encode: () => void) => {
      const before = rt.submitCount;
      encode();
      rt.flush();
      return rt.submitCount - before;
    };
    const many = () => {
      for (let i = 0; i < 600; i++) axpby(x, y, 0.5, 0.5);
    };
    // 600 dispatches: two automatic submissions (every 256) and the explicit one.
    assert.equal(count(many), 3);
    assert.equal(count(() => rt.asOneSubmission(many)), 1);
    assert.deepEqual(await x.toArray(), new Array(64).fill(1));
    x.dispose();
    y.dispose();
  },
);

gpuTest(
  "runtime: gpuTime measures one pass after another with the same query set, one at a time",
  async () => {
    const rt = await initRuntime();
    if (!rt.gpu.device.features.has("timestamp-query")) return;
    const [x, y] = counterPair(1024);
    const work = () => {
      for (let i = 0; i < 4; i++) axpby(x, y, 0, 1);
    };
    for (let r = 0; r < 3; r++) {
      const ms = await rt.gpuTime(work);
      assert.ok(ms !== null && ms >= 0, `measurement ${r}: ${ms}`);
    }
    const first = rt.gpuTime(work);
    await assert.rejects(rt.gpuTime(work), /already in progress/);
    await first;
    assert.deepEqual(await x.toArray(), new Array(1024).fill(1));
    x.dispose();
    y.dispose();
  },
);

gpuTest(
  "runtime: profile times every dispatch, past one query set, across readbacks, and results are unchanged",
  async () => {
    const rt = await initRuntime();
    if (!rt.gpu.device.features.has("timestamp-query")) return;
    const [x, y] = counterPair(256);
    // 2100 dispatches need two query sets of 4096 timestamps; a readback midway submits what came before.
    const rows = await rt.profile(async () => {
      for (let i = 0; i < 1050; i++) axpby(x, y, 1, 1);
      await x.toArray();
      for (let i = 0; i < 1050; i++) axpby(x, y, 1, 1);
    });
    assert.ok(rows !== null);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].kernel, "elementwise:accumulate");
    assert.equal(rows[0].count, 2100);
    assert.ok(rows[0].ms > 0 && Number.isFinite(rows[0].ms), `total ${rows[0].ms} ms`);
    assert.deepEqual(await x.toArray(), new Array(256).fill(2100));
    await assert.rejects(rt.profile(() => rt.profile(() => {})), /already in progress/);
    x.dispose();
    y.dispose();
  },
);

gpuTest(
  "runtime: prepared work runs after the work submitted before it, with its own parameters and buffers",
  async () => {
    const rt = await initRuntime();
    const x = keep(full([64], 1));
    const prepared = rt.prepare(() =>
      tidy(() => {
        const two = full([64], 2); // freed here, before the work that writes it is submitted
        axpby(x, two, 3, 1); // x = 3·x + 2
      })
    );
    // Issued after the prepared work but submitted ahead of it (the readback when issued, the rest by `submit`):
    // a copy, as decoding's readback, dispatches that rewrite the parameter arena from its start, and a buffer of
    // the freed one's size class.
    const before = x.toArray();
    fill(x, 5);
    const other = keep(full([64], 9));
    prepared.submit();
    assert.deepEqual(await before, new Array(64).fill(1), "the readback copied x before the prepared work");
    assert.deepEqual(await x.toArray(), new Array(64).fill(17), "3·5 + 2: in order, with its own parameters");
    assert.deepEqual(await other.toArray(), new Array(64).fill(9), "the freed buffer was not handed out");
    assert.throws(() => prepared.submit(), /already submitted/);

    const again = rt.prepare(() => fill(x, 4));
    assert.throws(() => rt.prepare(() => {}), /not submitted yet/);
    again.submit();
    // Work that would submit inside prepare throws, and the runtime goes on.
    assert.throws(() => rt.prepare(() => x.write(new Float32Array(64))), /cannot be submitted early/);
    axpby(x, other, 1, 1);
    assert.deepEqual(await x.toArray(), new Array(64).fill(13));
    x.dispose();
    other.dispose();
  },
);

gpuTest(
  "runtime: subgroups are used only where the device grants them, at a power-of-two width, and turn off on demand",
  async () => {
    // The runtime's own device, not a second adapter request, which may pick another adapter.
    const rt = await initRuntime();
    const width = rt.gpu.subgroupSize;
    if (!rt.gpu.device.features.has("subgroups")) assert.equal(width, null);
    if (width !== null) {
      assert.ok(width >= 4 && (width & (width - 1)) === 0, `subgroup width ${width}`);
      assert.ok(rt.gpu.device.features.has("subgroups"));
    }
    assert.equal(rt.subgroups, width);
    assert.match(workgroupReduceWgsl(null), /reduce_scratch\[lid\] \+= reduce_scratch\[lid \+ s\]/);
    assert.doesNotMatch(workgroupReduceWgsl(null), /subgroup/);
    assert.match(workgroupReduceWgsl(32), /subgroupAdd/);
    rt.useSubgroups(false);
    assert.equal(rt.subgroups, null);
    rt.useSubgroups(true);
    assert.equal(rt.subgroups, width);
  },
);
