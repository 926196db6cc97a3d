/** Small inline datasets shared by the lib/data tests. */

export function seedLine(
  user: string,
  assistant: string,
  mark: unknown,
  extra: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    original: `- ${user}\n- ${assistant}`,
    parsed: [{ speaker_name: "", phrase: user }, { speaker_name: "Муж", phrase: assistant }],
    total_mark: mark,
    ...extra,
  });
}

export const encoder = new TextEncoder();

export function bytesOf(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Concatenates byte arrays (to splice invalid UTF-8 into a file). */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
