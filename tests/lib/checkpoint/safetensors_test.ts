import assert from "node:assert/strict";
import {
  f32ToBf16,
  f32ToF16,
  MAX_HEADER_BYTES,
  openCheckpoint,
  SafetensorsFile,
  type TensorToWrite,
  writeSafetensors,
  writeShardedSafetensors,
} from "../../../lib/checkpoint/mod.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ostrota-safetensors-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const F32_VALUES = Float32Array.of(1, -2.5, 3.140625, 1e-3, 65504, -0, 1e-8, 7);

function sampleTensors(): TensorToWrite[] {
  return [
    { name: "w.f32", dtype: "f32", shape: [2, 4], data: F32_VALUES },
    { name: "w.f16", dtype: "f16", shape: [4, 2], data: F32_VALUES },
    { name: "w.bf16", dtype: "bf16", shape: [8], data: F32_VALUES },
    { name: "w.f16raw", dtype: "f16", shape: [2], data: Uint16Array.of(0x3c00, 0x0001) },
    { name: "ids.i64", dtype: "i64", shape: [3], data: BigInt64Array.of(-1n, 0n, 2n ** 40n) },
    { name: "ids.i32", dtype: "i32", shape: [1, 3], data: Int32Array.of(-7, 0, 2 ** 30) },
    { name: "mask.u8", dtype: "u8", shape: [3], data: Uint8Array.of(0, 1, 255) },
    { name: "q.i8", dtype: "i8", shape: [2], data: Int8Array.of(-128, 127) },
    { name: "scalar", dtype: "f32", shape: [], data: Float32Array.of(42) },
    { name: "empty", dtype: "f32", shape: [0, 3], data: new Float32Array(0) },
  ];
}

Deno.test("safetensors: write then read every dtype, with metadata and an 8-byte aligned header", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/model.safetensors`;
    await writeSafetensors(path, sampleTensors(), { format: "pt" });
    const bytes = await Deno.readFile(path);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(headerLength % 8, 0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    assert.deepEqual(header.__metadata__, { format: "pt" });
    assert.deepEqual(Object.keys(header)[0], "__metadata__");
    // Laid out by decreasing element size, then name: every tensor starts aligned to its element size.
    assert.deepEqual(header["ids.i64"].data_offsets, [0, 24]);
    for (const [name, entry] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const { dtype, data_offsets: [begin] } = entry as { dtype: string; data_offsets: number[] };
      const size = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, I8: 1 }[dtype]!;
      assert.equal((8 + headerLength + begin) % size, 0, `${name} is aligned`);
    }
    assert.equal(await Array.fromAsync(Deno.readDir(dir)).then((e) => e.length), 1, "no temp file left");

    const file = await SafetensorsFile.open(path);
    try {
      assert.deepEqual(file.names().sort(), sampleTensors().map((t) => t.name).sort());
      assert.deepEqual(file.info("w.f16"), { dtype: "f16", shape: [4, 2] });
      const f32 = await file.read("w.f32");
      assert.equal(f32.dtype, "f32");
      assert.deepEqual([...f32.data as Float32Array], [...F32_VALUES]);
      const f16AsF32 = await file.read("w.f16");
      assert.deepEqual([...f16AsF32.data as Float32Array], [
        ...new Float32Array(new Float16Array(F32_VALUES)),
      ]);
      const f16Bits = await file.read("w.f16", { as: "f16" });
      assert.equal(f16Bits.dtype, "f16");
      assert.deepEqual([...f16Bits.data as Uint16Array], [...f32ToF16(F32_VALUES)]);
      const bf16Raw = await file.read("w.bf16", { as: "raw" });
      assert.equal(bf16Raw.dtype, "bf16");
      assert.deepEqual([...bf16Raw.data as Uint16Array], [...f32ToBf16(F32_VALUES)]);
      const bf16AsF16 = await file.read("w.bf16", { as: "f16" });
      assert.equal(bf16AsF16.dtype, "f16");
      assert.deepEqual([...(await file.read("w.f16raw", { as: "raw" })).data as Uint16Array], [
        0x3c00,
        0x0001,
      ]);
      assert.deepEqual([...(await file.read("ids.i64")).data as BigInt64Array], [-1n, 0n, 2n ** 40n]);
      const i32 = await file.read("ids.i32", { as: "f32" });
      assert.equal(i32.dtype, "i32", "integer tensors always come back raw");
      assert.deepEqual([...i32.data as Int32Array], [-7, 0, 2 ** 30]);
      assert.deepEqual([...(await file.read("mask.u8")).data as Uint8Array], [0, 1, 255]);
      assert.deepEqual([...(await file.read("q.i8")).data as Int8Array], [-128, 127]);
      const scalar = await file.read("scalar");
      assert.deepEqual(scalar.shape, []);
      assert.deepEqual([...scalar.data as Float32Array], [42]);
      assert.deepEqual((await file.read("empty")).shape, [0, 3]);
      const rows = await file.read("w.f32", { rows: [1, 2] });
      assert.deepEqual(rows.shape, [1, 4]);
      assert.deepEqual([...rows.data as Float32Array], [...F32_VALUES.subarray(4)]);
      await assert.rejects(() => file.read("w.f32", { rows: [1, 3] }), /rows \[1, 3\) outside \[0, 2\)/);
      await assert.rejects(() => file.read("nope"), /no tensor named "nope"/);
      // Concurrent reads are serialised per file and each gets its own bytes.
      const both = await Promise.all([
        file.read("w.f32"),
        file.read("ids.i32"),
        file.read("w.f32", { rows: [0, 1] }),
      ]);
      assert.deepEqual([...both[0].data as Float32Array], [...F32_VALUES]);
      assert.deepEqual([...both[2].data as Float32Array], [...F32_VALUES.subarray(0, 4)]);
    } finally {
      file.close();
    }
  });
});

Deno.test("safetensors: header bytes match the reference layout for a small file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/x.safetensors`;
    await writeSafetensors(path, [
      { name: "b", dtype: "f16", shape: [1], data: Uint16Array.of(0x3c00) },
      { name: "a", dtype: "f32", shape: [2], data: Float32Array.of(1, 2) },
    ]);
    const bytes = await Deno.readFile(path);
    const json =
      '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}}';
    const padded = json + " ".repeat((8 - (json.length % 8)) % 8);
    assert.equal(new TextDecoder().decode(bytes.subarray(8, 8 + padded.length)), padded);
    assert.equal(bytes.length, 8 + padded.length + 10);
    assert.deepEqual([...bytes.subarray(8 + padded.length)], [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0x00, 0x3c]);
  });
});

Deno.test("safetensors: writer refuses data that does not fit the shape and leaves no file behind", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/bad.safetensors`;
    await assert.rejects(
      () => writeSafetensors(path, [{ name: "w", dtype: "f32", shape: [3], data: Float32Array.of(1, 2) }]),
      /tensor w: Float32Array of 2 elements does not fit f32 \[3\]/,
    );
    await assert.rejects(
      () =>
        writeSafetensors(path, [
          { name: "w", dtype: "f32", shape: [1], data: Float32Array.of(1) },
          { name: "w", dtype: "f32", shape: [1], data: Float32Array.of(1) },
        ]),
      /tensor w appears twice/,
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
  });
});

Deno.test("safetensors: sharded writer + index, read back through openCheckpoint; lazy tensor data", async () => {
  await withTempDir(async (dir) => {
    let produced = 0;
    const tensors: TensorToWrite[] = Array.from({ length: 5 }, (_, i) => ({
      name: `layers.${i}.weight`,
      dtype: "bf16",
      shape: [4, 4],
      data: () => {
        produced++;
        return Float32Array.from({ length: 16 }, (_, j) => i * 16 + j);
      },
    }));
    const files = await writeShardedSafetensors(dir, tensors, { maxShardBytes: 70 });
    assert.equal(produced, 5);
    assert.deepEqual(files, [
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
      "model.safetensors.index.json",
    ]);
    const index = JSON.parse(await Deno.readTextFile(`${dir}/model.safetensors.index.json`));
    assert.equal(index.metadata.total_size, 5 * 32);
    assert.equal(index.weight_map["layers.4.weight"], "model-00003-of-00003.safetensors");
    const ckpt = await openCheckpoint(dir);
    try {
      assert.equal(ckpt.format, "safetensors");
      assert.equal(ckpt.files.length, 4);
      assert.deepEqual(ckpt.names(), tensors.map((t) => t.name).sort());
      const t = await ckpt.read("layers.3.weight");
      assert.deepEqual(t.shape, [4, 4]);
      assert.deepEqual([...t.data as Float32Array], Array.from({ length: 16 }, (_, j) => 48 + j));
      assert.throws(() => ckpt.info("missing"), /no tensor named "missing"/);
    } finally {
      ckpt.close();
    }
    const single = await writeShardedSafetensors(`${dir}/one`, tensors.slice(0, 1), { maxShardBytes: 1e9 });
    assert.deepEqual(single, ["model.safetensors"]);
  });
});

Deno.test("openCheckpoint: index naming a shard that lacks the tensor, and empty folders, are errors", async () => {
  await withTempDir(async (dir) => {
    await writeSafetensors(`${dir}/s1.safetensors`, [{
      name: "a",
      dtype: "f32",
      shape: [1],
      data: Float32Array.of(1),
    }]);
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({ weight_map: { a: "s1.safetensors", b: "s1.safetensors" } }),
    );
    await assert.rejects(
      () => openCheckpoint(dir),
      /weight_map puts b in s1.safetensors, which has no such tensor/,
    );
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({ weight_map: { a: "../x" } }),
    );
    await assert.rejects(() => openCheckpoint(dir), /weight_map names shard "..\/x"/);
    await Deno.mkdir(`${dir}/empty`);
    await assert.rejects(
      () => openCheckpoint(`${dir}/empty`),
      /no weights found; expected one of model.safetensors/,
    );
    await assert.rejects(() => openCheckpoint(`${dir}/nope`), /does not exist/);
  });
});

/** A file whose header is `header` (JSON text, unpadded) followed by `dataBytes` zero bytes. */
function rawFile(header: string, dataBytes: number, declaredLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

Deno.test("safetensors: corrupted headers are refused with the file and tensor named", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/bad.safetensors`;
    const cases: [string, Uint8Array, RegExp][] = [
      [
        "offsets past the end",
        rawFile('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', 8),
        /tensor w: data_offsets end 16 is past the data section \(8 bytes\)/,
      ],
      [
        "size mismatch",
        rawFile('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', 8),
        /tensor w: data_offsets 0..8 span 8 bytes but f32 \[3\] needs 12/,
      ],
      [
        "overlap",
        rawFile(
          '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
          8,
        ),
        /tensor [ab] overlaps/,
      ],
      [
        "gap",
        rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
        /gap of 4 bytes before tensor a/,
      ],
      [
        "trailing bytes",
        rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 8),
        /tensors end at data byte 4 but the data section has 8 bytes/,
      ],
      [
        "bad dtype",
        rawFile('{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}', 1),
        /tensor w has unsupported dtype "Q4"/,
      ],
      [
        "bad shape",
        rawFile('{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', 4),
        /tensor w has shape \[-1\]/,
      ],
      [
        "reversed offsets",
        rawFile('{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', 4),
        /tensor w has data_offsets \[4,0\]/,
      ],
      ["not json", rawFile("{nope", 0), /header is not UTF-8 JSON/],
      ["not an object", rawFile("[1,2]", 0), /header is not a JSON object/],
      ["metadata not strings", rawFile('{"__metadata__":{"a":1}}', 0), /__metadata__.a must be a string/],
      [
        "huge header length",
        rawFile("{}", 0, BigInt(MAX_HEADER_BYTES) + 1n),
        /header length 100000001 exceeds 100000000 bytes/,
      ],
      ["header past the end", rawFile("{}", 0, 1000n), /header length 1000 runs past the end of the file/],
      ["shorter than 8 bytes", new Uint8Array(5), /fewer than the 8-byte header length/],
    ];
    for (const [what, bytes, pattern] of cases) {
      await Deno.writeFile(path, bytes);
      await assert.rejects(() => SafetensorsFile.open(path), (error: Error) => {
        assert.ok(error instanceof RangeError, `${what}: ${error}`);
        assert.match(error.message, pattern, what);
        assert.ok(error.message.includes(path), `${what}: the message names the file`);
        return true;
      });
    }
  });
});

Deno.test("safetensors: a truncated file is refused when opened", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/t.safetensors`;
    await writeSafetensors(path, [{ name: "w", dtype: "f32", shape: [64], data: new Float32Array(64) }]);
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 10));
    await assert.rejects(
      () => SafetensorsFile.open(path),
      /tensor w: data_offsets end 256 is past the data section/,
    );
  });
});
