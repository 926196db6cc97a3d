import assert from "node:assert/strict";
import { swiglu } from "../../../compute/activations.ts";
import { noGrad } from "../../../compute/autograd.ts";
import { rt } from "../../../compute/runtime.ts";
import { keep, type Tensor, tensor, tidy } from "../../../compute/tensor.ts";
import { f32ToF16 } from "../../../lib/checkpoint/mod.ts";
import {
  Linear,
  type LinearEpilogue,
  type LinearLike,
  type LinearNorm,
  linearThen,
  LoraLinear,
  NormedInput,
} from "../../../lib/models/linear.ts";
import { Nf4Linear } from "../../../lib/models/nf4_linear.ts";
import { assertClose, gpuTest, randn, unpoisoned } from "../../compute/harness.ts";

const [IN, OUT] = [64, 48];

/** One layer per weight storage the fused GEMV takes: f32 and f16 with a bias, double-quantised NF4 without. */
async function layers(): Promise<{ name: string; layer: LinearLike }[]> {
  const w = Float32Array.from(randn(OUT * IN, 91, 0.2));
  const bias = () => keep(tensor(Float32Array.from(randn(OUT, 92)), [OUT]));
  const nf4 = await Nf4Linear.fromF32(
    keep(tensor(Float32Array.from(randn(OUT * IN, 93)), [OUT, IN])),
    null,
    true,
  );
  return [
    { name: "f32", layer: new Linear(keep(tensor(w, [OUT, IN])), bias()) },
    { name: "f16", layer: new Linear(keep(tensor(f32ToF16(w), [OUT, IN], "f16")), bias()) },
    { name: "nf4", layer: nf4 },
  ];
}

/** A fused one-row result against the first row of the unfused two-row one; disposes both. */
async function assertFirstRow(label: string, fused: Tensor, plain: Tensor): Promise<void> {
  assertClose(label, await fused.toArray(), (await plain.toArray()).slice(0, OUT), 1e-5);
  fused.dispose();
  plain.dispose();
}

gpuTest(
  "linearThen: a one-row call fused into the GEMV equals the layer's forward followed by the op",
  async () => {
    const all = await layers();
    const [base, ...unused] = await layers();
    for (const u of unused) u.layer.dispose();
    const loraA = keep(tensor(Float32Array.from(randn(4 * IN, 98, 0.1)), [4, IN]));
    const loraB = keep(tensor(Float32Array.from(randn(OUT * 4, 99, 0.1)), [OUT, 4]));
    all.push({
      name: "lora (adapter on: not fused)",
      layer: new LoraLinear(base.layer, loraA, loraB, { r: 4, alpha: 8 }),
    });
    const x = keep(tensor(Float32Array.from(randn(IN, 94)), [1, 1, IN]));
    const aux = keep(tensor(Float32Array.from(randn(OUT, 95, 2)), [1, 1, OUT]));
    const epilogues: LinearEpilogue[] = [
      { kind: "residual", residual: aux },
      { kind: "silu-gate", gate: aux },
      { kind: "gelu" },
    ];
    for (const { name, layer } of all) {
      for (const epilogue of epilogues) {
        const [fused, plain] = noGrad(() =>
          tidy(() => {
            const f = keep(linearThen(layer, x, epilogue));
            // Two rows take the unfused path; the first row is x.
            const two = tensor(Float32Array.from([...randn(IN, 94), ...randn(IN, 96)]), [1, 2, IN]);
            const twoAux = epilogue.kind === "gelu" ? epilogue : {
              ...epilogue,
              [epilogue.kind === "residual" ? "residual" : "gate"]: tensor(
                Float32Array.from([...randn(OUT, 95, 2), ...randn(OUT, 97)]),
                [1, 2, OUT],
              ),
            } as LinearEpilogue;
            return [f, keep(linearThen(layer, two, twoAux))] as Tensor[];
          })
        );
        await assertFirstRow(`${name} ${epilogue.kind}`, fused, plain);
      }
      layer.dispose();
    }
    x.dispose();
    aux.dispose();
  },
);

gpuTest(
  "NormedInput: RMSNorm / LayerNorm fused into one-row GEMVs equals the norm followed by the layers",
  async () => {
    const all = await layers();
    const weight = keep(tensor(Float32Array.from(randn(IN, 112)), [IN]));
    const bias = keep(tensor(Float32Array.from(randn(IN, 113)), [IN]));
    const norms: LinearNorm[] = [
      { kind: "rms", weight, eps: 1e-6 },
      { kind: "layer", weight, bias, eps: 1e-5 },
    ];
    const rows = Float32Array.from([...randn(IN, 114, 2), ...randn(IN, 115)]);
    const x = keep(tensor(rows.slice(0, IN), [1, 1, IN]));
    const two = keep(tensor(rows, [1, 2, IN]));
    for (const { name, layer } of all) {
      for (const norm of norms) {
        const [fused, plain] = noGrad(() =>
          tidy(
            () => [
              keep(new NormedInput(x, norm).linear(layer)),
              keep(new NormedInput(two, norm).linear(layer)),
            ],
          )
        );
        await assertFirstRow(`${name} ${norm.kind}`, fused, plain);
      }
      layer.dispose();
    }
    for (const t of [weight, bias, x, two]) t.dispose();
  },
);

gpuTest(
  "NormedInput: q/k/v (linears) and gate/up (swiglu) each in one GEMV dispatch when decoding, equal to the " +
    "layers one by one; an active adapter falls back",
  async () => {
    const firsts = await layers();
    const seconds = await layers();
    const [adapted, ...unused] = await layers();
    for (const u of unused) u.layer.dispose();
    const norm: LinearNorm = {
      kind: "rms",
      weight: keep(tensor(Float32Array.from(randn(IN, 121)), [IN])),
      eps: 1e-6,
    };
    const rows = Float32Array.from([...randn(IN, 122, 2), ...randn(IN, 123)]);
    const x = keep(tensor(rows.slice(0, IN), [1, 1, IN]));
    const two = keep(tensor(rows, [1, 2, IN]));
    const dispatches = (work: () => Tensor[]) => {
      const before = rt().dispatchCount;
      const out = unpoisoned(work);
      return { out, count: rt().dispatchCount - before };
    };
    for (const [i, { name, layer }] of firsts.entries()) {
      const other = seconds[i].layer;
      // q, k, v: the third is the first again (same weight, its own output).
      const trio = [layer, other, layer];
      const [fused, plain] = noGrad(() =>
        tidy(() => {
          // The first decode through a double-quantised NF4 weight widens its scales (a dispatch each, once).
          new NormedInput(x, norm).linears([layer, other]);
          const stack = dispatches(() => new NormedInput(x, norm).linears(trio).map(keep));
          const pair = dispatches(() => [keep(new NormedInput(x, norm).swiglu(layer, other))]);
          assert.deepEqual([stack.count, pair.count], [1, 1], `${name}: one dispatch each`);
          const h = new NormedInput(two, norm);
          return [
            [...stack.out, ...pair.out],
            [...h.linears(trio), swiglu(h.linear(layer), h.linear(other))].map(keep),
          ];
        })
      );
      for (const [j, f] of fused.entries()) await assertFirstRow(`${name} output ${j}`, f, plain[j]);
      other.dispose();
    }
    // An f32 layer beside one with an active adapter: not one GEMV, the same values as the layers one by one.
    const loraA = keep(tensor(Float32Array.from(randn(4 * IN, 124, 0.1)), [4, IN]));
    const loraB = keep(tensor(Float32Array.from(randn(OUT * 4, 125, 0.1)), [OUT, 4]));
    const pair = [firsts[0].layer, new LoraLinear(adapted.layer, loraA, loraB, { r: 4, alpha: 8 })];
    const [fused, plain] = noGrad(() =>
      tidy(() => [
        new NormedInput(x, norm).linears(pair).map(keep),
        new NormedInput(two, norm).linears(pair).map(keep),
      ])
    );
    for (const [j, f] of fused.entries()) await assertFirstRow(`with an adapter, output ${j}`, f, plain[j]);
    for (const l of [...firsts.map((f) => f.layer), pair[1]]) l.dispose();
    for (const t of [norm.weight, x, two]) t.dispose();
  },
);
