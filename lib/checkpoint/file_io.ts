/**
 * Positional reads from an open file, serialised per file so that concurrent callers cannot interleave
 * their seek/read pairs, and atomic file replacement for writers.
 */

/** A read-only file that hands out byte ranges; at most one range is in flight at a time. */
export class RangeReader {
  readonly path: string;
  readonly size: number;
  #file: Deno.FsFile;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(path: string, file: Deno.FsFile, size: number) {
    this.path = path;
    this.#file = file;
    this.size = size;
  }

  static async open(path: string): Promise<RangeReader> {
    const file = await Deno.open(path, { read: true });
    try {
      const { size, isFile } = await file.stat();
      if (!isFile) throw new TypeError(`${path} is not a regular file`);
      return new RangeReader(path, file, size);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** Reads exactly `length` bytes at `offset`; a range past the end of the file is an error. */
  read(offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      return Promise.reject(
        new RangeError(`${this.path}: invalid byte range offset=${offset} length=${length}`),
      );
    }
    if (offset + length > this.size) {
      return Promise.reject(
        new RangeError(
          `${this.path}: byte range ${offset}..${offset + length} is past the end of the file ` +
            `(${this.size} bytes); the file is truncated or its index is wrong`,
        ),
      );
    }
    const task = this.#queue.then(() => this.#readNow(offset, length));
    this.#queue = task.catch(() => undefined);
    return task;
  }

  async #readNow(offset: number, length: number): Promise<Uint8Array> {
    if (this.#closed) throw new TypeError(`${this.path}: read after close()`);
    const out = new Uint8Array(length);
    await this.#file.seek(offset, Deno.SeekMode.Start);
    let filled = 0;
    while (filled < length) {
      const n = await this.#file.read(out.subarray(filled));
      if (n === null || n === 0) {
        throw new RangeError(
          `${this.path}: unexpected end of file at byte ${offset + filled}; the file is truncated`,
        );
      }
      filled += n;
    }
    return out;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/** Splits a path into its folder (with no trailing slash; "." when none) and file name. */
export function splitPath(path: string): { dir: string; base: string } {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return { dir: ".", base: path };
  return { dir: slash === 0 ? "/" : path.slice(0, slash), base: path.slice(slash + 1) };
}

/** Joins a folder and a relative file name. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/**
 * Writes a file atomically: `write` fills a temporary file in the same folder, which is synced and then
 * renamed over `path`, so readers never see a half-written file. The temporary file is removed on error.
 */
export async function writeFileAtomic(
  path: string,
  write: (file: Deno.FsFile) => Promise<void>,
): Promise<void> {
  const { dir, base } = splitPath(path);
  const tmp = joinPath(dir, `.${base}.${crypto.randomUUID()}.tmp`);
  const file = await Deno.open(tmp, { write: true, createNew: true });
  try {
    await write(file);
    await file.sync();
    file.close();
    await Deno.rename(tmp, path);
  } catch (error) {
    try {
      file.close();
    } catch {
      // already closed by the success path before rename failed
    }
    await Deno.remove(tmp).catch(() => undefined);
    throw error;
  }
}

/** Writes all of `bytes` to `file` (FsFile.write may write less than asked). */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

/** Writes a text file atomically. */
export function writeTextFileAtomic(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, (file) => writeAll(file, new TextEncoder().encode(text)));
}
