/**
 * A minimal zip reader for the archives torch.save writes (PyTorchStreamWriter): entries are "stored"
 * (uncompressed), so each entry is a byte range of the file and is read on demand. Zip64 records are
 * understood, since files above 4 GiB need them. Compressed entries are refused.
 */
import { RangeReader } from "./file_io.ts";

export interface ZipEntry {
  name: string;
  /** Absolute byte offset of the entry's data in the file. */
  dataOffset: number;
  size: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_MIN_BYTES = 22;
const MAX_COMMENT_BYTES = 0xffff;

function u64(view: DataView, offset: number, path: string, what: string): number {
  const value = view.getBigUint64(offset, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`${path}: zip ${what} ${value} is too large`);
  }
  return Number(value);
}

/** Lists a zip file's entries (from its central directory), checking that each lies inside the file. */
export async function readZipEntries(reader: RangeReader): Promise<Map<string, ZipEntry>> {
  const path = reader.path;
  const tailLength = Math.min(reader.size, EOCD_MIN_BYTES + MAX_COMMENT_BYTES);
  const tailStart = reader.size - tailLength;
  const tail = await reader.read(tailStart, tailLength);
  const tailView = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tail.length - EOCD_MIN_BYTES; i >= 0; i--) {
    if (tailView.getUint32(i, true) === EOCD_SIGNATURE) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    throw new TypeError(
      `${path}: not a zip archive (no end-of-central-directory record); torch files older than torch 1.6 ` +
        "(legacy tar/pickle format) are not supported: re-save with torch >= 1.6 or convert to safetensors",
    );
  }
  let entryCount = tailView.getUint16(eocd + 10, true);
  let centralSize = tailView.getUint32(eocd + 12, true);
  let centralOffset = tailView.getUint32(eocd + 16, true);
  if (entryCount === 0xffff || centralSize === 0xffffffff || centralOffset === 0xffffffff) {
    const locatorAt = eocd - 20;
    if (locatorAt < 0 || tailView.getUint32(locatorAt, true) !== ZIP64_LOCATOR_SIGNATURE) {
      throw new RangeError(`${path}: zip64 end-of-central-directory locator is missing`);
    }
    const zip64At = u64(tailView, locatorAt + 8, path, "zip64 record offset");
    const record = new DataView((await reader.read(zip64At, 56)).buffer);
    if (record.getUint32(0, true) !== ZIP64_EOCD_SIGNATURE) {
      throw new RangeError(`${path}: zip64 end-of-central-directory record not found at ${zip64At}`);
    }
    entryCount = u64(record, 32, path, "entry count");
    centralSize = u64(record, 40, path, "central directory size");
    centralOffset = u64(record, 48, path, "central directory offset");
  }
  const central = await reader.read(centralOffset, centralSize);
  const view = new DataView(central.buffer);
  const decoder = new TextDecoder();
  const entries = new Map<string, ZipEntry>();
  let at = 0;
  for (let i = 0; i < entryCount; i++) {
    if (at + 46 > central.length || view.getUint32(at, true) !== CENTRAL_SIGNATURE) {
      throw new RangeError(`${path}: corrupt zip central directory at entry ${i}`);
    }
    const method = view.getUint16(at + 10, true);
    let compressedSize = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let localOffset = view.getUint32(at + 42, true);
    const name = decoder.decode(central.subarray(at + 46, at + 46 + nameLength));
    let extraAt = at + 46 + nameLength;
    const extraEnd = extraAt + extraLength;
    while (extraAt + 4 <= extraEnd) {
      const id = view.getUint16(extraAt, true);
      const length = view.getUint16(extraAt + 2, true);
      if (id === 0x0001) {
        let field = extraAt + 4;
        if (size === 0xffffffff) {
          size = u64(view, field, path, `size of ${name}`);
          field += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = u64(view, field, path, `compressed size of ${name}`);
          field += 8;
        }
        if (localOffset === 0xffffffff) localOffset = u64(view, field, path, `offset of ${name}`);
      }
      extraAt += 4 + length;
    }
    if (method !== 0) {
      throw new TypeError(
        `${path}: zip entry ${name} is compressed (method ${method}); only stored entries, as torch.save ` +
          "writes them, are supported",
      );
    }
    if (compressedSize !== size) {
      throw new RangeError(
        `${path}: zip entry ${name} is stored but its sizes differ (${compressedSize} != ${size})`,
      );
    }
    const local = new DataView((await reader.read(localOffset, 30)).buffer);
    if (local.getUint32(0, true) !== LOCAL_SIGNATURE) {
      throw new RangeError(`${path}: zip entry ${name}: no local header at ${localOffset}`);
    }
    const dataOffset = localOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
    if (dataOffset + size > reader.size) {
      throw new RangeError(
        `${path}: zip entry ${name} (${size} bytes at ${dataOffset}) runs past the end of the file ` +
          `(${reader.size} bytes); the file is truncated`,
      );
    }
    entries.set(name, { name, dataOffset, size });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}
