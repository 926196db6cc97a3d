/**
 * The runs list: status, progress and key metrics, refreshed from GET /api/runs every two seconds; finished
 * train runs can be ticked and compared side by side.
 */
import { useEffect, useState } from "preact/hooks";
import type { RunListEntry } from "../lib/store/mod.ts";
import { formatNumber, formatTime } from "./_format.ts";

export interface RunsTableProps {
  initial: RunListEntry[];
  pollMs: number;
}

export function ProgressBar({ step, total }: { step: number; total: number | null }) {
  const fraction = total ? Math.min(1, step / total) : 0;
  return (
    <span class="progress" title={total ? `${step} / ${total}` : `${step}`}>
      <span class="bar" style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
      <span class="label">{total ? `${step} / ${total}` : step > 0 ? `${step}` : "—"}</span>
    </span>
  );
}

/** A train run whose evaluations before and after are stored (what the Compare page needs). */
function comparable(run: RunListEntry): boolean {
  const r = run.evalResults;
  return run.kind === "train" && !!r.before && !!r.after && !!r.training;
}

export default function RunsTable({ initial, pollMs }: RunsTableProps) {
  const [runs, setRuns] = useState(initial);
  const [chosen, setChosen] = useState<number[]>([]);
  const toggle = (id: number, on: boolean) =>
    setChosen((ids) => (on ? [...ids.filter((x) => x !== id), id] : ids.filter((x) => x !== id)));
  useEffect(() => {
    let stopped = false;
    const timer = setInterval(async () => {
      try {
        const response = await fetch("/api/runs");
        if (response.ok && !stopped) setRuns((await response.json() as { runs: RunListEntry[] }).runs);
      } catch {
        // The next poll tries again; the table keeps the last answer.
      }
    }, pollMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [pollMs]);
  if (runs.length === 0) return <p class="muted">No runs yet.</p>;
  return (
    <div class="runs-table">
      <p>
        <a
          class="compare-link"
          href={chosen.length > 0 ? `/compare?ids=${chosen.join(",")}` : undefined}
          aria-disabled={chosen.length === 0 ? "true" : undefined}
        >
          Compare selected ({chosen.length})
        </a>{" "}
        <span class="muted">— tick finished train runs</span>
      </p>
      <table class="runs">
        <thead>
          <tr>
            <th>
              <span class="muted">Compare</span>
            </th>
            <th class="num">#</th>
            <th>Name</th>
            <th>Kind</th>
            <th>Status</th>
            <th>Progress</th>
            <th class="num">Loss</th>
            <th class="num">Tokens/s</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.id} data-run-id={run.id}>
              <td>
                <input
                  type="checkbox"
                  name="compare"
                  value={run.id}
                  aria-label={`compare run ${run.id}`}
                  disabled={!comparable(run)}
                  checked={chosen.includes(run.id)}
                  onChange={(e) => toggle(run.id, (e.target as HTMLInputElement).checked)}
                />
              </td>
              <td class="num">{run.id}</td>
              <td>
                <a href={`/runs/${run.id}`}>{run.name}</a>
              </td>
              <td>{run.kind}</td>
              <td>
                <span class={`status status-${run.status}`}>{run.status}</span>
              </td>
              <td>
                <ProgressBar step={run.step} total={run.totalSteps} />
              </td>
              <td class="num">{formatNumber(run.latestMetric?.loss)}</td>
              <td class="num">{formatNumber(run.latestMetric?.tokens_per_second, 3)}</td>
              <td>{formatTime(run.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
