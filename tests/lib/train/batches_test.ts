import { lengthGroupedBatches, packedBatches } from "../../../lib/train/batches.ts";
import { IGNORE, type SftExample } from "../../../lib/train/format.ts";

function examples(): SftExample[] {
  return Array.from({ length: 23 }, (_, i) => {
    const n = 3 + (i * 7) % 11;
    const ids = Array.from({ length: n }, (_, t) => 100 * i + t);
    return { ids, labels: ids.map((id, t) => (t < 2 ? IGNORE : id)) };
  });
}

Deno.test("batches: length-grouped batches pad to their longest row, shift labels, and keep every example once", () => {
  const data = examples();
  const batches = lengthGroupedBatches(data, 4, 0, 7, 0);
  const seen: number[] = [];
  for (const b of batches) {
    for (let r = 0; r < b.batch; r++) {
      const first = b.ids[r * b.seq];
      const ex = data[Math.floor(first / 100)];
      seen.push(Math.floor(first / 100));
      if (ex.ids.length > b.seq) throw new Error("row longer than the batch");
      for (let t = 0; t < b.seq; t++) {
        const want = t + 1 < ex.labels.length ? ex.labels[t + 1] : IGNORE;
        if (b.targets[r * b.seq + t] !== want) {
          throw new Error(`target ${r},${t}: ${b.targets[r * b.seq + t]} vs ${want}`);
        }
      }
    }
    if (
      b.seq !==
        Math.max(
          ...Array.from({ length: b.batch }, (_, r) => data[Math.floor(b.ids[r * b.seq] / 100)].ids.length),
        )
    ) {
      throw new Error("a batch is padded beyond its longest row");
    }
  }
  if (seen.sort((a, b) => a - b).join() !== data.map((_, i) => i).join()) {
    throw new Error("examples lost or repeated");
  }
  // The longest batch comes first (a run that cannot fit fails at step one).
  if (batches[0].seq !== Math.max(...batches.map((b) => b.seq))) throw new Error("longest batch not first");
  // Same seed and epoch: same order; another epoch: another order.
  const again = lengthGroupedBatches(data, 4, 0, 7, 0);
  if (again.map((b) => b.ids[0]).join() !== batches.map((b) => b.ids[0]).join()) {
    throw new Error("not deterministic");
  }
  const next = lengthGroupedBatches(data, 4, 0, 7, 1);
  if (next.map((b) => b.ids[0]).join() === batches.map((b) => b.ids[0]).join()) {
    throw new Error("epochs share an order");
  }
});

Deno.test("batches: packing fills rows of exactly seq tokens with whole examples and keeps every example", () => {
  const data = examples();
  const batches = packedBatches(data, 3, 24, 0, 5, 0);
  const tokens = batches.reduce((n, b) => n + b.tokens, 0);
  if (tokens !== data.reduce((n, e) => n + e.ids.length, 0)) throw new Error(`packed ${tokens} tokens`);
  for (const b of batches) if (b.seq !== 24) throw new Error(`row width ${b.seq}`);
});
