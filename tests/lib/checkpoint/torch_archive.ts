/**
 * Test helpers that write torch.save-style archives by hand: a pickle assembler for the opcodes torch
 * emits and a "stored" zip writer (optionally with zip64 records), so the .bin reader is tested without
 * PyTorch.
 */

/** Builds pickle bytes opcode by opcode. */
export class PickleWriter {
  #bytes: number[] = [];

  raw(...bytes: number[]): this {
    this.#bytes.push(...bytes);
    return this;
  }

  proto(version: number): this {
    return this.raw(0x80, version);
  }

  global(module: string, name: string): this {
    return this.raw(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }

  /** SHORT_BINUNICODE (protocol 4) for short strings, BINUNICODE otherwise. */
  str(text: string, short = false): this {
    const b = new TextEncoder().encode(text);
    if (short) return this.raw(0x8c, b.length, ...b);
    return this.raw(0x58, ...u32(b.length), ...b);
  }

  int(value: number): this {
    if (value >= 0 && value < 256) return this.raw(0x4b, value);
    if (value >= 0 && value < 65536) return this.raw(0x4d, value & 0xff, value >> 8);
    if (value >= -(2 ** 31) && value < 2 ** 31) return this.raw(0x4a, ...u32(value >>> 0));
    return this.long1(value);
  }

  long1(value: number): this {
    const bytes: number[] = [];
    let v = BigInt(value);
    do {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
    } while (v !== 0n && v !== -1n);
    if ((bytes[bytes.length - 1] & 0x80) !== (value < 0 ? 0x80 : 0)) bytes.push(value < 0 ? 0xff : 0);
    return this.raw(0x8a, bytes.length, ...bytes);
  }

  mark(): this {
    return this.raw(0x28);
  }
  tuple(): this {
    return this.raw(0x74);
  }
  tuple2(): this {
    return this.raw(0x86);
  }
  emptyTuple(): this {
    return this.raw(0x29);
  }
  emptyDict(): this {
    return this.raw(0x7d);
  }
  reduce(): this {
    return this.raw(0x52);
  }
  binpersid(): this {
    return this.raw(0x51);
  }
  put(index: number): this {
    return this.raw(0x71, index);
  }
  get(index: number): this {
    return this.raw(0x68, index);
  }
  setitems(): this {
    return this.raw(0x75);
  }
  setitem(): this {
    return this.raw(0x73);
  }
  newFalse(): this {
    return this.raw(0x89);
  }
  build(): this {
    return this.raw(0x62);
  }
  stop(): this {
    return this.raw(0x2e);
  }

  /** An int tuple: MARK ints TUPLE. */
  ints(values: number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }

  /** An empty OrderedDict, as torch pickles backward hooks. */
  emptyOrderedDict(): this {
    return this.global("collections", "OrderedDict").emptyTuple().reduce();
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.#bytes);
  }
}

function u32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

function u16(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff];
}

function u64(v: number): number[] {
  return [...u32(v % 2 ** 32), ...u32(Math.floor(v / 2 ** 32))];
}

export interface TensorSpec {
  name: string;
  storageType: string;
  key: string;
  storageNumel: number;
  offset: number;
  size: number[];
  stride: number[];
  /** Wraps the tensor in torch._utils._rebuild_parameter, as nn.Parameter values are saved. */
  parameter?: boolean;
}

/** The data.pkl torch.save writes for an OrderedDict of tensors (protocol 2, with memo puts). */
export function stateDictPickle(tensors: TensorSpec[]): Uint8Array {
  const p = new PickleWriter().proto(2).global("collections", "OrderedDict").put(0).emptyTuple().reduce().put(
    1,
  );
  p.mark();
  let memo = 2;
  const storageMemo = new Map<string, number>();
  for (const t of tensors) {
    p.str(t.name).put(memo++);
    if (t.parameter) p.global("torch._utils", "_rebuild_parameter").put(memo++).mark();
    p.global("torch._utils", "_rebuild_tensor_v2").put(memo++);
    p.mark();
    const known = storageMemo.get(t.key);
    if (known !== undefined) {
      p.get(known);
    } else {
      p.mark().str("storage").global("torch", t.storageType).str(t.key).str("cpu").int(t.storageNumel)
        .tuple();
      p.binpersid();
      storageMemo.set(t.key, memo);
      p.put(memo++);
    }
    p.int(t.offset).ints(t.size).ints(t.stride).newFalse().emptyOrderedDict().tuple().reduce();
    if (t.parameter) p.newFalse().emptyOrderedDict().tuple().reduce();
  }
  p.setitems();
  // torch state dicts carry a `_metadata` attribute, restored with BUILD.
  p.emptyDict().str("_metadata").global("collections", "OrderedDict").emptyTuple().reduce().setitem().build();
  return p.stop().bytes();
}

/** Writes a zip of stored entries; `zip64` forces the zip64 end records; `pad` adds local extra bytes. */
export function storedZip(
  entries: { name: string; data: Uint8Array }[],
  options: { zip64?: boolean } = {},
): Uint8Array {
  const out: number[] = [];
  const central: number[] = [];
  const enc = new TextEncoder();
  for (const [i, entry] of entries.entries()) {
    const name = enc.encode(entry.name);
    const offset = out.length;
    // Like torch's writer, pad the local extra field so data starts on a 64-byte boundary.
    const unpadded = offset + 30 + name.length + 4;
    const padding = (64 - (unpadded % 64)) % 64 + (i % 2 === 0 ? 64 : 0);
    const extra = [...u16(0x4246), ...u16(padding), ...new Array(padding).fill(0x5a)];
    out.push(...u32(0x04034b50), ...u16(20), ...u16(0), ...u16(0), ...u16(0), ...u16(0), ...u32(0));
    out.push(...u32(entry.data.length), ...u32(entry.data.length), ...u16(name.length), ...u16(extra.length));
    out.push(...name, ...extra, ...entry.data);
    const zip64Extra = options.zip64
      ? [...u16(1), ...u16(24), ...u64(entry.data.length), ...u64(entry.data.length), ...u64(offset)]
      : [];
    const sizeField = options.zip64 ? 0xffffffff : entry.data.length;
    const offsetField = options.zip64 ? 0xffffffff : offset;
    central.push(
      ...u32(0x02014b50),
      ...u16(20),
      ...u16(20),
      ...u16(0),
      ...u16(0),
      ...u16(0),
      ...u16(0),
      ...u32(0),
    );
    central.push(
      ...u32(sizeField),
      ...u32(sizeField),
      ...u16(name.length),
      ...u16(zip64Extra.length),
      ...u16(0),
    );
    central.push(...u16(0), ...u16(0), ...u32(0), ...u32(offsetField), ...name, ...zip64Extra);
  }
  const centralOffset = out.length;
  out.push(...central);
  if (options.zip64) {
    const recordOffset = out.length;
    out.push(...u32(0x06064b50), ...u64(44), ...u16(45), ...u16(45), ...u32(0), ...u32(0));
    out.push(...u64(entries.length), ...u64(entries.length), ...u64(central.length), ...u64(centralOffset));
    out.push(...u32(0x07064b50), ...u32(0), ...u64(recordOffset), ...u32(1));
    out.push(...u32(0x06054b50), ...u16(0), ...u16(0), ...u16(0xffff), ...u16(0xffff));
    out.push(...u32(0xffffffff), ...u32(0xffffffff), ...u16(0));
  } else {
    out.push(...u32(0x06054b50), ...u16(0), ...u16(0), ...u16(entries.length), ...u16(entries.length));
    out.push(...u32(central.length), ...u32(centralOffset), ...u16(0));
  }
  return new Uint8Array(out);
}

/** A complete torch archive: `<prefix>/data.pkl`, `<prefix>/byteorder`, `<prefix>/data/<key>`, version. */
export function torchArchive(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array>,
  options: { prefix?: string; zip64?: boolean; byteorder?: string } = {},
): Uint8Array {
  const prefix = options.prefix ?? "archive";
  const enc = new TextEncoder();
  const entries = [
    { name: `${prefix}/data.pkl`, data: pickle },
    { name: `${prefix}/byteorder`, data: enc.encode(options.byteorder ?? "little") },
    ...Object.entries(storages).map(([key, data]) => ({ name: `${prefix}/data/${key}`, data })),
    { name: `${prefix}/version`, data: enc.encode("3\n") },
  ];
  return storedZip(entries, { zip64: options.zip64 });
}
