/** Request-body reading and validation, and the errors the API turns into 4xx answers. */
import type { Context } from "hono";
import type { JsonObject } from "../store/mod.ts";

/** The largest request body the API reads. */
export const MAX_BODY_BYTES = 1 << 20;

/** Thrown for a body over the limit (the API answers 413). */
export class BodyTooLargeError extends RangeError {
  constructor(limit: number) {
    super(`request body is over ${limit} bytes: send a smaller body`);
    this.name = "BodyTooLargeError";
  }
}

/** Thrown for a body that is not the JSON the endpoint takes (the API answers 400 naming the field). */
export class BadRequestError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "BadRequestError";
  }
}

/** Reads the body as a JSON object, at most `limit` bytes (counted as it streams, whatever Content-Length says). */
export async function readJsonObject(c: Context, limit = MAX_BODY_BYTES): Promise<JsonObject> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > limit) throw new BodyTooLargeError(limit);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const body = c.req.raw.body;
  if (body) {
    const reader = body.getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel();
        throw new BodyTooLargeError(limit);
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new BadRequestError("request body is not valid UTF-8: send JSON text");
  }
  if (text.trim() === "") throw new BadRequestError("request body is empty: send a JSON object");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BadRequestError(
      `request body is malformed JSON (${(err as Error).message}): send a JSON object`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BadRequestError(
      `request body must be a JSON object, got ${Array.isArray(value) ? "an array" : typeof value}`,
    );
  }
  return value as JsonObject;
}

/** Throws BadRequestError naming the first field of `body` not in `allowed`. */
export function rejectUnknownFields(
  body: JsonObject,
  allowed: readonly string[],
  where = "request body",
): void {
  for (const field of Object.keys(body)) {
    if (!allowed.includes(field)) {
      throw new BadRequestError(`${where}: unknown field "${field}"; allowed fields: ${allowed.join(", ")}`);
    }
  }
}

/** A run id from a path parameter; BadRequestError when it is not a positive integer. */
export function runIdParam(value: string): number {
  if (!/^[1-9]\d{0,15}$/.test(value)) {
    throw new BadRequestError(`run id must be a positive integer, got "${value}"`);
  }
  return Number(value);
}
