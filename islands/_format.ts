/** Formatting shared by islands and pages (runs in the browser and on the server). */

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "—";
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${sec}s` : `${sec}s`;
}

export function formatNumber(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e6)) return value.toExponential(2);
  return Number(value.toPrecision(digits)).toString();
}

export function formatTime(ms: number | null): string {
  if (ms === null) return "—";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

/**
 * Estimated time left, from the pace of the last `window` logged steps (so a resumed run, which restarts
 * mid-way, is timed by its own steps); null until two steps are logged or when the total is unknown.
 */
export function etaMs(
  points: { step: number; t: number }[],
  step: number,
  total: number | null,
  window = 20,
): number | null {
  if (total === null || step >= total || points.length < 2) return null;
  const recent = points.slice(-window);
  const first = recent[0];
  const last = recent[recent.length - 1];
  if (last.step <= first.step) return null;
  return ((last.t - first.t) / (last.step - first.step)) * (total - step);
}
