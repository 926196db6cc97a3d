import type { BadRow, BadRowReport } from "./types.ts";

/** How many rejected rows are kept verbatim to show; the counts always cover all of them. */
export const BAD_ROW_EXAMPLES = 5;

/** Collects rejected rows by reason. */
export class BadRowCollector {
  readonly counts: Record<string, number> = {};
  readonly examples: BadRow[] = [];

  add(line: number, reason: string, detail: string): void {
    this.counts[reason] = (this.counts[reason] ?? 0) + 1;
    if (this.examples.length < BAD_ROW_EXAMPLES) this.examples.push({ line, reason, detail });
  }

  /** Adds every row of another report (used when a later stage drops more rows). */
  merge(report: BadRowReport): void {
    for (const [reason, count] of Object.entries(report.counts)) {
      this.counts[reason] = (this.counts[reason] ?? 0) + count;
    }
    for (const example of report.examples) {
      if (this.examples.length < BAD_ROW_EXAMPLES) this.examples.push(example);
    }
  }

  get total(): number {
    return Object.values(this.counts).reduce((sum, count) => sum + count, 0);
  }

  report(): BadRowReport {
    return { counts: { ...this.counts }, examples: [...this.examples] };
  }
}

/** A short, single-line excerpt of a bad value for messages. */
export function excerpt(value: unknown, max = 80): string {
  let text: string;
  try {
    text = typeof value === "string"
      ? value
      : JSON.stringify(value, (_key, v) => typeof v === "bigint" ? String(v) : v);
  } catch {
    text = String(value);
  }
  text = (text ?? String(value)).replace(/\s+/g, " ");
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
