import assert from "node:assert/strict";
import {
  attention,
  attentionWithAppend,
  attentionWithRope,
  decodeQueryHeads,
  KVCache,
} from "../../compute/attention.ts";
import { ropeAppend } from "../../compute/rope.ts";
import { backward, noGrad } from "../../compute/autograd.ts";
import { rt } from "../../compute/runtime.ts";
import { empty, keep, type Tensor, tensor, tidy } from "../../compute/tensor.ts";
import { assertClose, checkOp, gpuTest, randn, unpoisoned } from "./harness.ts";

interface Case {
  B: number;
  T: number;
  S: number;
  Hq: number;
  Hkv: number;
  D: number;
  causal: boolean;
  /** Rows of the k/v buffers (≥ S); keys are the first S. */
  kvRows?: number;
  /** [B, S] 1 = attend. */
  mask?: number[];
  scale?: number;
}

/** float64 reference: softmax(scale q kᵀ) v per head with GQA, causal offset S − T and key padding. */
function attentionRef(c: Case, q: Float64Array, k: Float64Array, v: Float64Array): Float64Array {
  const { B, T, S, Hq, Hkv, D } = c;
  const rows = c.kvRows ?? S;
  const scale = c.scale ?? 1 / Math.sqrt(D);
  const group = Hq / Hkv;
  const out = new Float64Array(B * T * Hq * D);
  const scores = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < Hq; h++) {
        const hk = Math.floor(h / group);
        const qo = ((b * T + t) * Hq + h) * D;
        let max = -Infinity;
        for (let s = 0; s < S; s++) {
          const visible = (!c.causal || s <= S - T + t) && (!c.mask || c.mask[b * S + s] !== 0);
          if (!visible) {
            scores[s] = -Infinity;
            continue;
          }
          const ko = ((b * rows + s) * Hkv + hk) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
          scores[s] = dot * scale;
          max = Math.max(max, scores[s]);
        }
        if (max === -Infinity) continue; // no visible key: zeros
        let sum = 0;
        for (let s = 0; s < S; s++) sum += scores[s] === -Infinity ? 0 : Math.exp(scores[s] - max);
        for (let s = 0; s < S; s++) {
          if (scores[s] === -Infinity) continue;
          const w = Math.exp(scores[s] - max) / sum;
          const vo = ((b * rows + s) * Hkv + hk) * D;
          for (let d = 0; d < D; d++) out[qo + d] += w * v[vo + d];
        }
      }
    }
  }
  return out;
}

const TOL = { forward: 1e-5, grad: 1e-5 };

/** Asserts fn throws an error of `type` whose message contains `text`. */
function assertThrows(fn: () => unknown, type: ErrorConstructor, text: string): void {
  assert.throws(fn, (e: unknown) => e instanceof type && e.message.includes(text));
}

async function checkCase(label: string, c: Case, seed: number): Promise<void> {
  const rows = c.kvRows ?? c.S;
  const mask = c.mask ? tensor(Int32Array.from(c.mask), [c.B, c.S], "i32") : null;
  try {
    await checkOp(
      label,
      [
        { data: randn(c.B * c.T * c.Hq * c.D, seed, 1.5), shape: [c.B, c.T, c.Hq, c.D] },
        { data: randn(c.B * rows * c.Hkv * c.D, seed + 1, 1.5), shape: [c.B, rows, c.Hkv, c.D] },
        { data: randn(c.B * rows * c.Hkv * c.D, seed + 2), shape: [c.B, rows, c.Hkv, c.D] },
      ],
      (q, k, v) =>
        attention(q, k, v, {
          causal: c.causal,
          scale: c.scale,
          keyMask: mask,
          kvLength: c.kvRows ? c.S : undefined,
        }),
      (q, k, v) => attentionRef(c, q, k, v),
      TOL,
    );
  } finally {
    mask?.dispose();
  }
}

gpuTest("attention: causal self-attention with GQA over several query and key tiles", async () => {
  await checkCase("causal GQA 4/2", { B: 2, T: 45, S: 45, Hq: 4, Hkv: 2, D: 24, causal: true }, 1);
  await checkCase("causal MHA D=7", { B: 1, T: 37, S: 37, Hq: 3, Hkv: 3, D: 7, causal: true, scale: 0.3 }, 4);
});

gpuTest("attention: non-causal cross lengths with key padding and a fully padded batch row", async () => {
  const B = 2, T = 7, S = 41;
  const mask = Array.from({ length: B * S }, (_, i) => (i < S ? (i % 3 === 1 ? 0 : 1) : 0));
  await checkCase("padded", { B, T, S, Hq: 3, Hkv: 1, D: 17, causal: false, mask }, 10);
});

gpuTest("attention: causal decode offset (T < S) with left padding, head dim 128", async () => {
  const B = 2, S = 19;
  // Batch 1 is left-padded by 5: its first queries see only padding until position 5.
  const mask = Array.from({ length: B * S }, (_, i) => (i >= S && i - S < 5 ? 0 : 1));
  await checkCase("decode", { B, T: 6, S, Hq: 2, Hkv: 2, D: 128, causal: true, mask }, 20);
  await checkCase("left-padded prefill", { B, T: S, S, Hq: 2, Hkv: 1, D: 20, causal: true, mask }, 30);
});

gpuTest(
  "attention: one query per row (the decode kernel) vs f64 with gradients: a group of 7 query heads at head dim " +
    "128 with left padding (a workgroup a query head), keys over several splits, MHA at D = 7 with a fully " +
    "padded row, a batch large enough for a workgroup per kv head's group, a group too large for one workgroup",
  async () => {
    const S = 37;
    const padded = Array.from({ length: 2 * S }, (_, i) => (i >= S && i - S < 5 ? 0 : 1));
    assert.equal(decodeQueryHeads(2, S, 14, 2, 128), 1);
    await checkCase(
      "group 7 D=128",
      { B: 2, T: 1, S, Hq: 14, Hkv: 2, D: 128, causal: true, mask: padded },
      50,
    );
    await checkCase("splits", { B: 1, T: 1, S: 600, Hq: 7, Hkv: 1, D: 16, causal: true }, 53);
    const empty = Array.from({ length: 2 * 9 }, (_, i) => (i < 9 ? (i % 4 === 2 ? 0 : 1) : 0));
    await checkCase("MHA D=7", { B: 2, T: 1, S: 9, Hq: 3, Hkv: 3, D: 7, causal: false, mask: empty }, 56);
    // 34 rows × 8 kv heads fill the GPU with a workgroup per kv head, each taking its group's 2 query heads.
    assert.equal(decodeQueryHeads(34, 6, 16, 8, 8), 2);
    await checkCase("whole groups", { B: 34, T: 1, S: 6, Hq: 16, Hkv: 8, D: 8, causal: true }, 57);
    // 64 query heads per kv head: a workgroup's arrays would outgrow workgroup memory, so each takes one head.
    assert.equal(decodeQueryHeads(300, 5, 64, 1, 8), 1);
    await checkCase("group 64", { B: 1, T: 1, S: 5, Hq: 64, Hkv: 1, D: 8, causal: true }, 59);
  },
);

gpuTest(
  "attention: long keys split among workgroups (flash-decoding merge), padded splits and rows",
  async () => {
    const B = 2, S = 300;
    // Batch 0 is left-padded past the first key split; batch 1 is all padding (its outputs must be zeros).
    const mask = Array.from({ length: B * S }, (_, i) => (i < S && i >= 70 ? 1 : 0));
    await checkCase("split causal", { B, T: 3, S, Hq: 4, Hkv: 2, D: 16, causal: true, mask }, 50);
    await checkCase("split non-causal", { B: 1, T: 2, S: 260, Hq: 2, Hkv: 1, D: 33, causal: false }, 60);
  },
);

gpuTest(
  "attention: kvLength reads a prefix of longer k/v buffers; unused rows get zero gradient",
  async () => {
    await checkCase("prefix", { B: 2, T: 5, S: 9, kvRows: 23, Hq: 4, Hkv: 2, D: 12, causal: true }, 40);
  },
);

gpuTest("attention: gradients only for inputs that require them", async () => {
  const c: Case = { B: 1, T: 6, S: 6, Hq: 2, Hkv: 1, D: 8, causal: true };
  const qData = randn(6 * 2 * 8, 70), kData = randn(6 * 8, 71), vData = randn(6 * 8, 72);
  const q = keep(tensor(Float32Array.from(qData), [1, 6, 2, 8]));
  const k = keep(tensor(Float32Array.from(kData), [1, 6, 1, 8]));
  const v = keep(tensor(Float32Array.from(vData), [1, 6, 1, 8]));
  v.requiresGrad = true;
  try {
    const out = keep(tidy(() => attention(q, k, v, { causal: true })));
    const ones = keep(tensor(new Float32Array(out.size).fill(1), out.shape));
    backward(out, ones);
    ones.dispose();
    out.dispose();
    assert.equal(q.grad, null);
    assert.equal(k.grad, null);
    // d(sum out)/dv[s] = sum over queries and heads of their softmax weight on key s.
    const expected = new Float64Array(6 * 8);
    for (let s = 0; s < 6; s++) {
      const onehot = new Float64Array(6 * 8);
      onehot.fill(1, s * 8, s * 8 + 8);
      const out1 = attentionRef(c, qData, kData, onehot);
      const total = out1.reduce((a, x) => a + x, 0) / 8;
      expected.fill(total, s * 8, s * 8 + 8);
    }
    assertClose("dv", await v.grad!.toArray(), expected, 1e-5);
  } finally {
    for (const t of [q, k, v]) t.dispose();
  }
});

gpuTest("attention: a query with no visible key outputs exact zeros, no NaN", async () => {
  const q = tensor(Float32Array.from(randn(2 * 3 * 2 * 8, 1)), [2, 3, 2, 8]);
  const k = tensor(Float32Array.from(randn(2 * 4 * 1 * 8, 2)), [2, 4, 1, 8]);
  const mask = tensor(Int32Array.from([1, 0, 1, 1, 0, 0, 0, 0]), [2, 4], "i32");
  const out = attention(q, k, k, { causal: false, keyMask: mask });
  const values = await out.toArray();
  for (const t of [q, k, mask, out]) t.dispose();
  const padded = values.slice(3 * 2 * 8);
  if (padded.some((x) => x !== 0)) throw new Error(`fully padded batch gave ${padded.slice(0, 4)}`);
  if (values.some((x) => !Number.isFinite(x))) throw new Error("NaN in attention output");
});

gpuTest("attention: shape and dtype errors throw before any dispatch", async () => {
  const q = empty([2, 5, 4, 8]);
  const k = empty([2, 5, 2, 8]);
  const kBadHeads = empty([2, 5, 3, 8]);
  const kBadDim = empty([2, 5, 2, 6]);
  const mask = empty([2, 5], "i32");
  const maskF32 = empty([2, 5]);
  const before = rt().dispatchCount;
  assertThrows(() => attention(q, kBadHeads, kBadHeads, { causal: false }), RangeError, "[2, 5, 3, 8]");
  assertThrows(() => attention(q, kBadDim, kBadDim, { causal: false }), RangeError, "[2, 5, 2, 6]");
  assertThrows(() => attention(q, k, kBadDim, { causal: false }), RangeError, "[2, 5, 2, 8]");
  assertThrows(() => attention(q, k, k, { causal: true, kvLength: 3 }), RangeError, "[2, 5, 4, 8]");
  assertThrows(() => attention(q, k, k, { causal: false, keyMask: maskF32 }), TypeError, "i32");
  assertThrows(
    () => attention(q, k, k, { causal: false, keyMask: mask, kvLength: 6 }),
    RangeError,
    "kvLength",
  );
  if (rt().dispatchCount !== before) throw new Error("a failing call dispatched work");
  for (const t of [q, k, kBadHeads, kBadDim, mask, maskF32]) t.dispose();
  await rt().sync();
});

gpuTest(
  "KVCache: prefill then token-by-token decode (kvLength from the cache) matches full causal attention",
  async () => {
    const B = 2, L = 11, prefill = 6, Hq = 4, Hkv = 2, D = 16;
    const qAll = randn(B * L * Hq * D, 5);
    const kAll = randn(B * L * Hkv * D, 6);
    const vAll = randn(B * L * Hkv * D, 7);
    const mask = Array.from({ length: B * L }, (_, i) => (i >= L && i - L < 2 ? 0 : 1));
    const expected = attentionRef({ B, T: L, S: L, Hq, Hkv, D, causal: true, mask }, qAll, kAll, vAll);

    /** Positions [t0, t1) of a [B, L, H, D] host array as a [B, t1 − t0, H, D] tensor. */
    const slice = (data: Float64Array, H: number, t0: number, t1: number): Tensor => {
      const out = new Float32Array(B * (t1 - t0) * H * D);
      for (let b = 0; b < B; b++) {
        out.set(data.subarray((b * L + t0) * H * D, (b * L + t1) * H * D), b * (t1 - t0) * H * D);
      }
      return tensor(out, [B, t1 - t0, H, D]);
    };
    const cache = new KVCache(B, L, Hkv, D);
    const maskTensor = tensor(Int32Array.from(mask), [B, L], "i32");
    const got = new Float64Array(B * L * Hq * D);
    try {
      const steps: [number, number][] = [[0, prefill]];
      for (let t = prefill; t < L; t++) steps.push([t, t + 1]);
      for (const [t0, t1] of steps) {
        const out = noGrad(() =>
          tidy(() => {
            cache.append(slice(kAll, Hkv, t0, t1), slice(vAll, Hkv, t0, t1));
            return attention(slice(qAll, Hq, t0, t1), cache.keys(), cache.values(), {
              causal: true,
              keyMask: maskTensor,
            });
          })
        );
        const values = await out.read();
        out.dispose();
        for (let b = 0; b < B; b++) {
          got.set(
            values.subarray(b * (t1 - t0) * Hq * D, (b + 1) * (t1 - t0) * Hq * D),
            (b * L + t0) * Hq * D,
          );
        }
      }
      if (cache.length !== L) throw new Error(`cache length ${cache.length}, want ${L}`);
      assertClose("cached decode", got, expected, 1e-5);
      const extra = tensor(new Float32Array(B * Hkv * D), [B, 1, Hkv, D]);
      assertThrows(() => cache.append(extra, extra), RangeError, "exceed");
      extra.dispose();
    } finally {
      cache.dispose();
      maskTensor.dispose();
    }
  },
);

/** A fused decode (one dispatch) and the ops it stands for, each given its own cache. */
interface Fusion {
  name: string;
  fused(q: Tensor, k: Tensor, v: Tensor, positions: Tensor, cache: KVCache, mask?: Tensor): Tensor | null;
  separate(q: Tensor, k: Tensor, v: Tensor, positions: Tensor, cache: KVCache, mask: Tensor): Tensor;
}

const THETA = 1e6;
const FUSIONS: Fusion[] = [
  {
    name: "attentionWithRope",
    fused: (q, k, v, positions, cache, mask) => attentionWithRope(q, k, v, positions, THETA, cache, mask),
    separate: (q, k, v, positions, cache, mask) =>
      attention(ropeAppend(q, k, v, positions, THETA, cache), cache.keys(), cache.values(), {
        causal: true,
        keyMask: mask,
      }),
  },
  {
    name: "attentionWithAppend",
    fused: (q, k, v, _positions, cache, mask) => attentionWithAppend(q, k, v, cache, mask),
    separate: (q, k, v, _positions, cache, mask) => {
      cache.append(k, v);
      return attention(q, cache.keys(), cache.values(), { causal: true, keyMask: mask });
    },
  },
];

gpuTest(
  "attentionWithRope / attentionWithAppend: rotation (or not), cache append and attention in one dispatch equal " +
    "ropeAppend (or KVCache.append) then attention (a group of 7 at head dim 128, a workgroup a query head, and " +
    "MHA at 64, over two key splits with left padding; MHA at D = 8; a workgroup per group of 2); they decline " +
    "T > 1",
  async () => {
    for (
      const [fusion, { B, Hq, Hkv, D, history, pad }] of FUSIONS.flatMap((f) =>
        [
          { B: 2, Hq: 14, Hkv: 2, D: 128, history: 300, pad: [0, 3] },
          { B: 2, Hq: 4, Hkv: 4, D: 64, history: 300, pad: [2, 0] },
          { B: 1, Hq: 4, Hkv: 4, D: 8, history: 5, pad: [0] },
          { B: 33, Hq: 16, Hkv: 8, D: 8, history: 5, pad: Array.from({ length: 33 }, (_, b) => b % 3) },
        ].map((geometry) => [f, geometry] as const)
      )
    ) {
      const maxLen = history + 2;
      const kind = fusion.name === "attentionWithRope" ? "rope" : "append";
      assert.equal(decodeQueryHeads(B, history + 1, Hq, Hkv, D, kind), B * Hkv >= 264 ? Hq / Hkv : 1);
      const fused = new KVCache(B, maxLen, Hkv, D);
      const separate = new KVCache(B, maxLen, Hkv, D);
      const mask = tensor(
        Int32Array.from({ length: B * maxLen }, (_, i) => (i % maxLen < pad[Math.floor(i / maxLen)] ? 0 : 1)),
        [B, maxLen],
        "i32",
      );
      const positions = tensor(Int32Array.from(pad, (p) => history - p), [B, 1], "i32");
      const q = tensor(Float32Array.from(randn(B * Hq * D, 21)), [B, 1, Hq, D]);
      const k = tensor(Float32Array.from(randn(B * Hkv * D, 22)), [B, 1, Hkv, D]);
      const v = tensor(Float32Array.from(randn(B * Hkv * D, 23)), [B, 1, Hkv, D]);
      try {
        noGrad(() =>
          tidy(() => {
            const pastK = tensor(Float32Array.from(randn(B * history * Hkv * D, 24)), [B, history, Hkv, D]);
            const pastV = tensor(Float32Array.from(randn(B * history * Hkv * D, 25)), [B, history, Hkv, D]);
            fused.append(pastK, pastV);
            separate.append(pastK, pastV);
          })
        );
        const two = tensor(new Float32Array(B * 2 * Hkv * D), [B, 2, Hkv, D]);
        const twoPositions = tensor(new Int32Array(B * 2), [B, 2], "i32");
        assert.equal(fusion.fused(two, two, two, twoPositions, fused), null, fusion.name);
        assert.equal(fused.length, history, "a declined call must not touch the cache");
        for (const t of [two, twoPositions]) t.dispose();

        const before = rt().dispatchCount;
        const got = unpoisoned(() => noGrad(() => fusion.fused(q, k, v, positions, fused, mask)))!;
        const dispatches = rt().dispatchCount - before;
        assert.equal(dispatches, history > 256 ? 2 : 1, "the decode kernel (and the splits' merge)");
        const want = noGrad(() => tidy(() => fusion.separate(q, k, v, positions, separate, mask)));
        assert.equal(fused.length, history + 1);
        assertClose(`${fusion.name} output`, await got.read(), await want.read(), 1e-6);
        const row = (t: Float32Array) =>
          t.subarray(0, maxLen * Hkv * D).slice(history * Hkv * D, (history + 1) * Hkv * D);
        for (
          const [name, a, b] of [["keys", fused.keys(), separate.keys()], [
            "values",
            fused.values(),
            separate.values(),
          ]] as const
        ) {
          assert.deepEqual(
            row(await a.read() as Float32Array),
            row(await b.read() as Float32Array),
            `appended ${name}`,
          );
        }
        got.dispose();
        want.dispose();
      } finally {
        for (const t of [mask, positions, q, k, v]) t.dispose();
        fused.dispose();
        separate.dispose();
      }
    }
  },
);
