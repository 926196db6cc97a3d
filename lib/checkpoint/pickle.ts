/**
 * A restricted unpickler for PyTorch state dicts. It executes nothing: it understands the opcodes that
 * torch.save emits for a dict of tensors (protocols 2-5) and resolves only the globals a state dict needs,
 * each to a small data-building function here. Any other global, opcode or persistent id is refused with an
 * error naming it and the file, so a malicious pickle (e.g. `os.system`) fails before doing anything.
 */
import type { DType } from "./dtypes.ts";

/** The storage a tensor views: an entry `data/<key>` of the zip archive. */
export interface TorchStorageRef {
  kind: "storage";
  dtype: DType;
  key: string;
  location: string;
}

/** A tensor as torch pickles it: a strided view into a storage (offsets and strides in elements). */
export interface TorchTensorRef {
  kind: "tensor";
  storage: TorchStorageRef;
  storageOffset: number;
  shape: number[];
  stride: number[];
}

/** The torch storage classes a state dict may reference, and the dtype each holds. */
export const TORCH_STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: "f32",
  HalfStorage: "f16",
  BFloat16Storage: "bf16",
  LongStorage: "i64",
  IntStorage: "i32",
  DoubleStorage: "f64",
  ShortStorage: "i16",
  CharStorage: "i8",
  ByteStorage: "u8",
  BoolStorage: "bool",
};

class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A Python dict / OrderedDict. */
export type PyDict = Map<unknown, unknown>;

const MARK = Symbol("mark");

const ALLOWED_CALLABLES = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
]);

function isAllowedGlobal(module: string, name: string): boolean {
  return ALLOWED_CALLABLES.has(`${module}.${name}`) || (module === "torch" && name in TORCH_STORAGE_DTYPES);
}

function toIntArray(value: unknown, what: string, source: string): number[] {
  if (!Array.isArray(value) || !value.every((v) => Number.isSafeInteger(v))) {
    throw new TypeError(`${source}: ${what} must be a tuple of integers, got ${describe(value)}`);
  }
  return value as number[];
}

function describe(value: unknown): string {
  if (value instanceof PickleGlobal) return `global ${value.qualified}`;
  if (value instanceof Map) return "dict";
  if (Array.isArray(value)) return `tuple/list of ${value.length}`;
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/**
 * Unpickles `bytes` (the contents of a torch archive's data.pkl). `source` names the file in errors.
 * Returns the unpickled object: for a state dict, a Map from parameter names to TorchTensorRef.
 */
export function unpickleStateDict(bytes: Uint8Array, source: string): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder("latin1");
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const storages = new Map<string, TorchStorageRef>();
  let pos = 0;

  const refuse = (what: string): never => {
    throw new TypeError(
      `${source}: refusing to unpickle ${what}; only PyTorch state dicts (tensors in dicts) are loaded. ` +
        "If this file is trusted, convert it to safetensors with PyTorch.",
    );
  };
  const need = (n: number): void => {
    if (pos + n > bytes.length) throw new RangeError(`${source}: pickle data ends early at byte ${pos}`);
  };
  const u8 = () => {
    need(1);
    return bytes[pos++];
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(`${source}: pickle length ${v} is too large`);
    }
    return Number(v);
  };
  const take = (n: number) => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new RangeError(`${source}: unterminated GLOBAL line at byte ${pos}`);
    const text = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const pop = () => {
    if (stack.length === 0) throw new RangeError(`${source}: pickle stack underflow at byte ${pos}`);
    const v = stack.pop();
    if (v === MARK) throw new RangeError(`${source}: unexpected MARK on the pickle stack at byte ${pos}`);
    return v;
  };
  const top = () => {
    if (stack.length === 0) throw new RangeError(`${source}: pickle stack underflow at byte ${pos}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const at = marks.pop();
    if (at === undefined) throw new RangeError(`${source}: pickle MARK missing at byte ${pos}`);
    return stack.splice(at).slice(1);
  };
  const makeGlobal = (module: string, name: string) => {
    if (!isAllowedGlobal(module, name)) refuse(`global ${module}.${name}`);
    return new PickleGlobal(module, name);
  };
  const littleEndianInt = (b: Uint8Array): number => {
    if (b.length === 0) return 0;
    let value = 0n;
    for (let i = b.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) value -= 1n << BigInt(8 * b.length);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new RangeError(`${source}: integer ${value} in pickle is out of range`);
    }
    return Number(value);
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map)) refuse(`SETITEM on ${describe(dict)}`);
    for (let i = 0; i + 1 < items.length; i += 2) (dict as PyDict).set(items[i], items[i + 1]);
  };
  const call = (fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof PickleGlobal)) return refuse(`a call of ${describe(fn)}`);
    if (!Array.isArray(args)) return refuse(`a call of ${fn.qualified} with ${describe(args)} arguments`);
    switch (fn.qualified) {
      case "collections.OrderedDict": {
        const dict: PyDict = new Map();
        if (args.length === 1 && Array.isArray(args[0])) {
          for (const pair of args[0]) {
            if (Array.isArray(pair) && pair.length === 2) dict.set(pair[0], pair[1]);
          }
        }
        return dict;
      }
      case "torch._utils._rebuild_tensor_v2": {
        const [storage, offset, size, stride] = args;
        if (!storage || (storage as TorchStorageRef).kind !== "storage") {
          return refuse(`_rebuild_tensor_v2 with storage ${describe(storage)}`);
        }
        if (!Number.isSafeInteger(offset) || (offset as number) < 0) {
          throw new TypeError(
            `${source}: tensor storage offset ${describe(offset)} is not a non-negative integer`,
          );
        }
        const shape = toIntArray(size, "tensor size", source);
        const strides = toIntArray(stride, "tensor stride", source);
        if (shape.length !== strides.length) {
          throw new TypeError(
            `${source}: tensor size ${describe(size)} and stride ${describe(stride)} differ in rank`,
          );
        }
        const tensor: TorchTensorRef = {
          kind: "tensor",
          storage: storage as TorchStorageRef,
          storageOffset: offset as number,
          shape: [...shape],
          stride: [...strides],
        };
        return tensor;
      }
      case "torch._utils._rebuild_parameter": {
        const data = args[0] as TorchTensorRef | undefined;
        if (!data || data.kind !== "tensor") return refuse(`_rebuild_parameter of ${describe(data)}`);
        return data;
      }
      default:
        return refuse(`a call of ${fn.qualified}`);
    }
  };
  const persistentLoad = (pid: unknown): TorchStorageRef => {
    if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 4) {
      return refuse(`persistent id ${describe(pid)}`);
    }
    const [, storageType, key, location] = pid;
    if (!(storageType instanceof PickleGlobal) || storageType.module !== "torch") {
      return refuse(`storage type ${describe(storageType)}`);
    }
    const dtype = TORCH_STORAGE_DTYPES[storageType.name];
    if (!dtype) return refuse(`storage type ${storageType.qualified}`);
    if (typeof key !== "string") return refuse(`storage key ${describe(key)}`);
    const existing = storages.get(key);
    if (existing) {
      if (existing.dtype !== dtype) {
        throw new TypeError(`${source}: storage ${key} is referenced as both ${existing.dtype} and ${dtype}`);
      }
      return existing;
    }
    const ref: TorchStorageRef = { kind: "storage", dtype, key, location: String(location) };
    storages.set(key, ref);
    return ref;
  };

  while (true) {
    const opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw new TypeError(`${source}: pickle protocol above 5 is not supported`);
        break;
      case 0x95: // FRAME: a length prefix only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) {
          throw new RangeError(`${source}: pickle STOP with ${stack.length} items on the stack`);
        }
        return stack[0];
      case 0x28: // MARK
        marks.push(stack.length);
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(littleEndianInt(take(u8())));
        break;
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0 || n > 16) {
          throw new RangeError(`${source}: LONG4 of ${n} bytes is not a state-dict integer`);
        }
        stack.push(littleEndianInt(take(n)));
        break;
      }
      case 0x47: { // BINFLOAT (big-endian double)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8.decode(take(u64())));
        break;
      case 0x54: // BINSTRING
        stack.push(latin1.decode(take(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64()).slice());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const index = op === 0x68 ? u8() : u32();
        if (!memo.has(index)) {
          throw new RangeError(`${source}: pickle memo ${index} is not defined (byte ${opAt})`);
        }
        stack.push(memo.get(index));
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        const name = line();
        stack.push(makeGlobal(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          refuse("STACK_GLOBAL with non-string names");
        }
        stack.push(makeGlobal(module as string, name as string));
        break;
      }
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        const a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: { // APPEND
        const value = pop();
        const list = top();
        if (!Array.isArray(list)) refuse(`APPEND to ${describe(list)}`);
        (list as unknown[]).push(value);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) refuse(`APPENDS to ${describe(list)}`);
        (list as unknown[]).push(...items);
        break;
      }
      case 0x64: { // DICT
        const dict: PyDict = new Map();
        setItems(dict, popMark());
        stack.push(dict);
        break;
      }
      case 0x73: { // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x81: { // NEWOBJ: only OrderedDict.__new__ is a known, harmless construction
        const args = pop();
        const cls = pop();
        if (!(cls instanceof PickleGlobal) || cls.qualified !== "collections.OrderedDict") {
          refuse(`NEWOBJ of ${describe(cls)}`);
        }
        stack.push(call(cls, args));
        break;
      }
      case 0x62: { // BUILD: the state of an OrderedDict (torch's `_metadata` attribute) is not needed
        pop();
        const target = top();
        if (!(target instanceof Map)) refuse(`BUILD of ${describe(target)}`);
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistentLoad(pop()));
        break;
      case 0x30: // POP
        if (stack.length > 0 && stack[stack.length - 1] === MARK) popMark();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        refuse(`opcode 0x${op.toString(16).padStart(2, "0")} at byte ${opAt}`);
    }
  }
}
