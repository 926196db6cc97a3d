import assert from "node:assert/strict";
import {
  f32ToBf16,
  f32ToF16,
  openCheckpoint,
  TorchBinFile,
  unpickleStateDict,
} from "../../../lib/checkpoint/mod.ts";
import { PickleWriter, stateDictPickle, type TensorSpec, torchArchive } from "./torch_archive.ts";
import { PYTHON_TORCH_ZIP_BASE64 } from "./python_pickle_fixture.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ostrota-torchbin-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

// Storage "0": 12 f32 values 0..11. "w" views it as [3, 4]; "wt" is its transpose (a non-contiguous view of the
// same storage, as `w.t()` saves); "tail" starts at storage offset 4 with shape [2, 4].
const STORAGE0 = Float32Array.from({ length: 12 }, (_, i) => i);
const HALF = Float32Array.of(0.5, -1, 2, 65504);
const TENSORS: TensorSpec[] = [
  {
    name: "w",
    storageType: "FloatStorage",
    key: "0",
    storageNumel: 12,
    offset: 0,
    size: [3, 4],
    stride: [4, 1],
  },
  {
    name: "wt",
    storageType: "FloatStorage",
    key: "0",
    storageNumel: 12,
    offset: 0,
    size: [4, 3],
    stride: [1, 4],
  },
  {
    name: "tail",
    storageType: "FloatStorage",
    key: "0",
    storageNumel: 12,
    offset: 4,
    size: [2, 4],
    stride: [4, 1],
  },
  {
    name: "h",
    storageType: "HalfStorage",
    key: "1",
    storageNumel: 4,
    offset: 0,
    size: [2, 2],
    stride: [2, 1],
    parameter: true,
  },
  { name: "b", storageType: "BFloat16Storage", key: "2", storageNumel: 4, offset: 1, size: [3], stride: [1] },
  { name: "ids", storageType: "LongStorage", key: "3", storageNumel: 2, offset: 0, size: [2], stride: [1] },
  { name: "n", storageType: "IntStorage", key: "4", storageNumel: 1, offset: 0, size: [], stride: [] },
];
const STORAGES = {
  "0": bytesOf(STORAGE0),
  "1": bytesOf(f32ToF16(HALF)),
  "2": bytesOf(f32ToBf16(Float32Array.of(9, 1.5, -3, 0.25))),
  "3": bytesOf(BigInt64Array.of(-5n, 2n ** 50n)),
  "4": bytesOf(Int32Array.of(123456)),
};

for (const zip64 of [false, true]) {
  Deno.test(`torch .bin (${zip64 ? "zip64" : "zip"}): state dict with strided, offset, shared and typed storages`, async () => {
    await withTempDir(async (dir) => {
      await Deno.writeFile(
        `${dir}/pytorch_model.bin`,
        torchArchive(stateDictPickle(TENSORS), STORAGES, { zip64 }),
      );
      const ckpt = await openCheckpoint(dir);
      try {
        assert.equal(ckpt.format, "pytorch");
        assert.deepEqual(ckpt.names(), ["b", "h", "ids", "n", "tail", "w", "wt"]);
        assert.deepEqual(ckpt.info("wt"), { dtype: "f32", shape: [4, 3] });
        assert.deepEqual([...(await ckpt.read("w")).data as Float32Array], [...STORAGE0]);
        // The transpose of [[0,1,2,3],[4,5,6,7],[8,9,10,11]].
        assert.deepEqual([...(await ckpt.read("wt")).data as Float32Array], [
          0,
          4,
          8,
          1,
          5,
          9,
          2,
          6,
          10,
          3,
          7,
          11,
        ]);
        assert.deepEqual([...(await ckpt.read("wt", { rows: [1, 3] })).data as Float32Array], [
          1,
          5,
          9,
          2,
          6,
          10,
        ]);
        assert.deepEqual([...(await ckpt.read("tail")).data as Float32Array], [4, 5, 6, 7, 8, 9, 10, 11]);
        assert.deepEqual([...(await ckpt.read("tail", { rows: [1, 2] })).data as Float32Array], [
          8,
          9,
          10,
          11,
        ]);
        assert.deepEqual([...(await ckpt.read("h")).data as Float32Array], [...HALF]);
        const hBits = await ckpt.read("h", { as: "f16" });
        assert.deepEqual([...hBits.data as Uint16Array], [...f32ToF16(HALF)]);
        const b = await ckpt.read("b");
        assert.deepEqual([...b.data as Float32Array], [1.5, -3, 0.25]);
        assert.equal((await ckpt.read("b", { as: "raw" })).dtype, "bf16");
        assert.deepEqual([...(await ckpt.read("ids")).data as BigInt64Array], [-5n, 2n ** 50n]);
        const n = await ckpt.read("n");
        assert.deepEqual(n.shape, []);
        assert.deepEqual([...n.data as Int32Array], [123456]);
      } finally {
        ckpt.close();
      }
    });
  });
}

Deno.test("torch .bin: a view reaching past its storage, a missing storage and big-endian files are refused", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/pytorch_model.bin`;
    const tooLong: TensorSpec = { ...TENSORS[0], size: [4, 4] };
    await Deno.writeFile(path, torchArchive(stateDictPickle([tooLong]), { "0": STORAGES["0"] }));
    await assert.rejects(
      () => TorchBinFile.open(path),
      /tensor w .* reaches element 15 of storage 0, which has 12/,
    );
    await Deno.writeFile(path, torchArchive(stateDictPickle([TENSORS[0]]), {}));
    await assert.rejects(() => TorchBinFile.open(path), /tensor w uses storage 0, which the archive lacks/);
    await Deno.writeFile(
      path,
      torchArchive(stateDictPickle([TENSORS[0]]), { "0": STORAGES["0"] }, { byteorder: "big" }),
    );
    await assert.rejects(() => TorchBinFile.open(path), /byteorder is "big"/);
    await Deno.writeFile(path, new TextEncoder().encode("not a zip at all, e.g. a legacy torch file"));
    await assert.rejects(() => TorchBinFile.open(path), /not a zip archive.*older than torch 1.6/);
    const good = torchArchive(stateDictPickle([TENSORS[0]]), { "0": STORAGES["0"] });
    await Deno.writeFile(path, good.subarray(0, good.length - 30));
    await assert.rejects(() => TorchBinFile.open(path), /zip|truncated|central/);
  });
});

Deno.test("pickle: a malicious global (os.system) is refused before anything runs", () => {
  const evil = new PickleWriter().proto(2).global("os", "system").str("echo pwned").raw(0x85).reduce().stop()
    .bytes();
  assert.throws(
    () => unpickleStateDict(evil, "evil.bin:archive/data.pkl"),
    (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /evil\.bin:archive\/data\.pkl: refusing to unpickle global os\.system/);
      return true;
    },
  );
  // The same through STACK_GLOBAL (protocol 4) and builtins.eval.
  const evil4 = new PickleWriter().proto(4).str("builtins", true).str("eval", true).raw(0x93).stop().bytes();
  assert.throws(() => unpickleStateDict(evil4, "x"), /refusing to unpickle global builtins\.eval/);
  // A torch-looking global that is not on the list.
  const notListed = new PickleWriter().proto(2).global("torch", "load").stop().bytes();
  assert.throws(() => unpickleStateDict(notListed, "x"), /refusing to unpickle global torch\.load/);
  // INST (0x69) builds arbitrary objects: refused as an opcode.
  const inst = new PickleWriter().proto(2).mark().raw(0x69, ...new TextEncoder().encode("os\nsystem\n"))
    .stop().bytes();
  assert.throws(() => unpickleStateDict(inst, "x"), /refusing to unpickle opcode 0x69/);
  // A persistent id that is not a torch storage.
  const pid = new PickleWriter().proto(2).str("module").binpersid().stop().bytes();
  assert.throws(() => unpickleStateDict(pid, "x"), /refusing to unpickle persistent id/);
});

Deno.test("torch .bin: a malicious data.pkl inside an archive is refused, naming the file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/pytorch_model.bin`;
    const evil = new PickleWriter().proto(2).global("subprocess", "Popen").str("ls").raw(0x85).reduce().stop()
      .bytes();
    await Deno.writeFile(path, torchArchive(evil, {}));
    await assert.rejects(() => openCheckpoint(dir), (error: Error) => {
      assert.ok(error.message.includes(path));
      assert.match(error.message, /global subprocess\.Popen/);
      return true;
    });
  });
});

Deno.test("pickle: protocol 4 forms (FRAME, MEMOIZE, SHORT_BINUNICODE, LONG1, BINFLOAT) decode", () => {
  const p = new PickleWriter().proto(4).raw(0x95, 0, 0, 0, 0, 0, 0, 0, 0);
  p.emptyDict().raw(0x94).mark();
  p.str("big", true).raw(0x94).long1(2 ** 40 + 3);
  p.str("neg", true).long1(-300);
  p.str("float", true).raw(0x47, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18);
  p.str("list", true).raw(0x5d).int(1).raw(0x61).mark().int(2).int(70000).raw(0x65);
  p.setitems().stop();
  const result = unpickleStateDict(p.bytes(), "x") as Map<string, unknown>;
  assert.equal(result.get("big"), 2 ** 40 + 3);
  assert.equal(result.get("neg"), -300);
  assert.equal(result.get("float"), Math.PI);
  assert.deepEqual(result.get("list"), [1, 2, 70000]);
});

Deno.test("torch .bin: sharded pytorch_model.bin.index.json", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(
      `${dir}/pytorch_model-00001-of-00002.bin`,
      torchArchive(stateDictPickle([TENSORS[0], TENSORS[1]]), { "0": STORAGES["0"] }),
    );
    await Deno.writeFile(
      `${dir}/pytorch_model-00002-of-00002.bin`,
      torchArchive(stateDictPickle([TENSORS[5]]), { "3": STORAGES["3"] }, { prefix: "pytorch_model" }),
    );
    const weightMap = {
      w: "pytorch_model-00001-of-00002.bin",
      wt: "pytorch_model-00001-of-00002.bin",
      ids: "pytorch_model-00002-of-00002.bin",
    };
    await Deno.writeTextFile(
      `${dir}/pytorch_model.bin.index.json`,
      JSON.stringify({ weight_map: weightMap }),
    );
    const ckpt = await openCheckpoint(dir);
    try {
      assert.equal(ckpt.format, "pytorch");
      assert.deepEqual(ckpt.names(), ["ids", "w", "wt"]);
      assert.deepEqual([...(await ckpt.read("ids")).data as BigInt64Array], [-5n, 2n ** 50n]);
      assert.deepEqual([...(await ckpt.read("wt", { rows: [0, 1] })).data as Float32Array], [0, 4, 8]);
    } finally {
      ckpt.close();
    }
  });
});

Deno.test("torch .bin: an archive pickled by CPython (make_python_pickle_fixture.py) reads back exactly", async () => {
  await withTempDir(async (dir) => {
    const zip = Uint8Array.from(atob(PYTHON_TORCH_ZIP_BASE64), (c) => c.charCodeAt(0));
    await Deno.writeFile(`${dir}/pytorch_model.bin`, zip);
    const ckpt = await openCheckpoint(dir);
    try {
      assert.deepEqual(ckpt.names(), [
        "embed.weight",
        "lm_head.weight",
        "norm.weight",
        "position_ids",
        "proj.weight_t",
      ]);
      const weights = Array.from({ length: 24 }, (_, i) => i * 0.5 - 3);
      assert.deepEqual([...(await ckpt.read("embed.weight")).data as Float32Array], weights);
      assert.deepEqual([...(await ckpt.read("lm_head.weight")).data as Float32Array], weights);
      // Storage offset 4, size [3, 2], stride [1, 3]: element (r, c) is storage[4 + r + 3c].
      const t = await ckpt.read("proj.weight_t");
      assert.deepEqual(t.shape, [3, 2]);
      assert.deepEqual([...t.data as Float32Array], [4, 7, 5, 8, 6, 9].map((i) => weights[i]));
      assert.deepEqual([...(await ckpt.read("norm.weight")).data as Float32Array], [-2, 0.5, 65504]);
      assert.deepEqual([...(await ckpt.read("position_ids")).data as BigInt64Array], [-1n, 0n, 2n ** 40n]);
    } finally {
      ckpt.close();
    }
  });
});
