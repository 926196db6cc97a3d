import { add, gelu, mul, scale, silu, sub } from "../../compute/elementwise.ts";
import { checkOp, gpuTest, randn } from "./harness.ts";

const TOL = { forward: 1e-6, grad: 1e-5 };

/** float64 reference of numpy broadcasting for a binary op. */
function broadcastRef(
  a: Float64Array,
  sa: number[],
  b: Float64Array,
  sb: number[],
  f: (x: number, y: number) => number,
): Float64Array {
  const nd = Math.max(sa.length, sb.length);
  const pa = [...new Array(nd - sa.length).fill(1), ...sa];
  const pb = [...new Array(nd - sb.length).fill(1), ...sb];
  const so = pa.map((d, i) => Math.max(d, pb[i]));
  const n = so.reduce((x, y) => x * y, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let ia = 0, ib = 0, stA = 1, stB = 1;
    for (let d = nd - 1; d >= 0; d--) {
      const k = rem % so[d];
      rem = Math.floor(rem / so[d]);
      ia += (pa[d] === 1 ? 0 : k) * stA;
      ib += (pb[d] === 1 ? 0 : k) * stB;
      stA *= pa[d];
      stB *= pb[d];
    }
    out[i] = f(a[ia], b[ib]);
  }
  return out;
}

const CASES: [number[], number[]][] = [
  [[7, 13], [7, 13]],
  [[3, 5, 17], [17]],
  [[3, 1, 17], [1, 5, 1]],
  [[300], [1]],
  [[2, 3, 4, 5], [3, 1, 5]],
  // Reductions over leading dims only (bias gradients): column sums, in row chunks and a second pass.
  [[333, 70], [70]],
  [[3, 100, 30], [100, 30]],
  [[2, 50, 9], [9]],
];

for (
  const [name, op, f] of [
    ["add", add, (x: number, y: number) => x + y],
    ["sub", sub, (x: number, y: number) => x - y],
    ["mul", mul, (x: number, y: number) => x * y],
  ] as const
) {
  gpuTest(`elementwise: ${name} with broadcasting, forward and backward`, async () => {
    for (const [i, [sa, sb]] of CASES.entries()) {
      const na = sa.reduce((x, y) => x * y, 1);
      const nb = sb.reduce((x, y) => x * y, 1);
      await checkOp(
        `${name} ${JSON.stringify(sa)} ⊕ ${JSON.stringify(sb)}`,
        [{ data: randn(na, 10 + i), shape: sa }, { data: randn(nb, 20 + i), shape: sb }],
        (a, b) => op(a, b),
        (a, b) => broadcastRef(a, sa, b, sb, f),
        TOL,
      );
    }
  });
}

const geluRef = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const siluRef = (x: number) => x / (1 + Math.exp(-x));

for (
  const [name, op, f] of [
    ["silu", silu, siluRef],
    ["gelu (tanh)", gelu, geluRef],
    ["scale", (x: Parameters<typeof silu>[0]) => scale(x, -2.5), (x: number) => -2.5 * x],
  ] as const
) {
  gpuTest(`elementwise: ${name} forward and backward`, async () => {
    const n = 1037;
    await checkOp(name, [{ data: randn(n, 5, 4), shape: [n] }], op, (x) => x.map(f), TOL);
  });
}
