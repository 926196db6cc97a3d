/**
 * The live Run page: charts of loss, learning rate, gradient norm and tokens/s (uPlot), progress with ETA,
 * GPU memory, log tail, samples and cancel/resume — all driven by the run's SSE stream, which resumes after
 * the last event the server rendered (and, on reconnect, after the last one received).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type uPlotType from "uplot";
import type { MetricRow, RunRecord, RunStatus, SampleRow } from "../lib/store/mod.ts";
import { shownAnswer } from "../lib/report/answer.ts";
import { etaMs, formatBytes, formatDuration, formatNumber, formatTime } from "./_format.ts";
import { ProgressBar } from "./RunsTable.tsx";

export interface RunViewProps {
  run: RunRecord;
  metrics: MetricRow[];
  samples: SampleRow[];
  logTail: string[];
  /** The id of the last event the page was rendered with; the stream replays what came after it. */
  afterId: number;
}

const LOG_LINES = 200;
const CHARTS = [
  { field: "loss", label: "Loss", color: "#c0392b" },
  { field: "lr", label: "Learning rate", color: "#2c7be5" },
  { field: "grad_norm", label: "Gradient norm", color: "#8e44ad" },
  { field: "tokens_per_second", label: "Tokens/s", color: "#27ae60" },
] as const;

type ChartField = typeof CHARTS[number]["field"];

function MetricChart({ metrics, field, label, color }: {
  metrics: MetricRow[];
  field: ChartField;
  label: string;
  color: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlotType | null>(null);
  const data = (): uPlotType.AlignedData => [
    metrics.map((m) => m.step),
    metrics.map((m) => m[field]),
  ];
  useEffect(() => {
    let cancelled = false;
    // uPlot needs the DOM, so it is loaded in the browser only.
    import("uplot").then(({ default: uPlot }) => {
      if (cancelled || !host.current) return;
      plot.current = new uPlot(
        {
          width: Math.max(240, host.current.clientWidth),
          height: 200,
          scales: { x: { time: false } },
          series: [{ label: "step" }, { label, stroke: color, width: 1.5, spanGaps: true }],
          // uPlot's own tick labels round a learning rate of 1e-5 to "0": small values are shown exponential.
          axes: [{}, { size: 70, values: (_u, splits) => splits.map((v) => formatNumber(v)) }],
          legend: { show: true },
        },
        data(),
        host.current,
      );
    });
    const resize = () => {
      if (plot.current && host.current) {
        plot.current.setSize({ width: host.current.clientWidth, height: 200 });
      }
    };
    addEventListener("resize", resize);
    return () => {
      cancelled = true;
      removeEventListener("resize", resize);
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData(data());
  }, [metrics]);
  const last = metrics.length > 0 ? metrics[metrics.length - 1][field] : null;
  return (
    <figure class="chart" data-chart={field}>
      <figcaption>
        {label} <span class="muted">{formatNumber(last)}</span>
      </figcaption>
      <div ref={host} class="chart-host" data-points={metrics.length} />
    </figure>
  );
}

interface StreamEvent {
  type: string;
  payload: unknown;
  t: number;
}

export default function RunView(props: RunViewProps) {
  const [run, setRun] = useState(props.run);
  const [metrics, setMetrics] = useState(props.metrics);
  const [samples, setSamples] = useState(props.samples);
  const [log, setLog] = useState(props.logTail);
  const [connected, setConnected] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());
  const logBox = useRef<HTMLPreElement>(null);
  useEffect(() => {
    // Follow the tail, as `tail -f` does.
    if (logBox.current) logBox.current.scrollTop = logBox.current.scrollHeight;
  }, [log]);

  useEffect(() => {
    const source = new EventSource(`/api/runs/${props.run.id}/events?after=${props.afterId}`);
    source.onopen = () => setConnected(true);
    source.onerror = () => setConnected(false);
    const on = (type: string, apply: (event: StreamEvent) => void) =>
      source.addEventListener(type, (message) => apply(JSON.parse((message as MessageEvent).data)));
    on("status", (e) => {
      const { status, error } = e.payload as { status: RunStatus; error: string | null };
      setRun((r) => ({
        ...r,
        status,
        error,
        startedAt: status === "running" ? e.t : r.startedAt,
        finishedAt: status === "running" || status === "queued" ? null : e.t,
      }));
    });
    on("progress", (e) => {
      const { step, total } = e.payload as { step: number; total: number | null };
      setRun((r) => ({ ...r, step, totalSteps: total }));
    });
    on("metric", (e) => setMetrics((m) => [...m, e.payload as MetricRow]));
    on("sample", (e) => setSamples((s) => [...s, e.payload as SampleRow]));
    on("log", (e) => setLog((l) => [...l, (e.payload as { line: string }).line].slice(-LOG_LINES)));
    on("eval", (e) => {
      const { label, result } = e.payload as { label: string; result: RunRecord["evalResults"][string] };
      setRun((r) => ({ ...r, evalResults: { ...r.evalResults, [label]: result } }));
    });
    on("artifact", (e) => {
      const { name, path } = e.payload as { name: string; path: string };
      setRun((r) => ({ ...r, artifacts: { ...r.artifacts, [name]: path } }));
    });
    const clock = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      source.close();
      clearInterval(clock);
    };
  }, []);

  const act = async (action: "cancel" | "resume") => {
    setActionError(null);
    const response = await fetch(`/api/runs/${run.id}/${action}`, { method: "POST" });
    if (!response.ok) setActionError((await response.json() as { error: string }).error);
  };

  const eta = run.status === "running" ? etaMs(metrics, run.step, run.totalSteps) : null;
  const lastGpu = metrics.length > 0 ? metrics[metrics.length - 1].gpu_bytes : null;
  const canCancel = run.status === "queued" || run.status === "running";
  const canResume = run.status === "interrupted" || run.status === "cancelled" || run.status === "failed";
  return (
    <div class="run-view">
      <section class="run-head">
        <span class={`status status-${run.status}`} data-field="status">{run.status}</span>
        <ProgressBar step={run.step} total={run.totalSteps} />
        {run.status === "running" && run.startedAt !== null && (
          <span>elapsed {formatDuration(now - run.startedAt)}</span>
        )}
        <span data-field="eta">{eta !== null ? `ETA ${formatDuration(eta)}` : ""}</span>
        <span>GPU {formatBytes(lastGpu)}</span>
        <span class={connected ? "live on" : "live"}>{connected ? "live" : "offline"}</span>
        {canCancel && <button type="button" onClick={() => act("cancel")}>Cancel</button>}
        {canResume && <button type="button" onClick={() => act("resume")}>Resume</button>}
      </section>
      {actionError && <p class="error">{actionError}</p>}
      {run.error && <p class="error">{run.error}</p>}
      <dl class="facts">
        <dt>Kind</dt>
        <dd>{run.kind}</dd>
        <dt>Created</dt>
        <dd>{formatTime(run.createdAt)}</dd>
        <dt>Started</dt>
        <dd>{formatTime(run.startedAt)}</dd>
        <dt>Finished</dt>
        <dd>{formatTime(run.finishedAt)}</dd>
      </dl>
      <section class="charts">
        {CHARTS.map((chart) => <MetricChart key={chart.field} metrics={metrics} {...chart} />)}
      </section>
      <section>
        <h2>Log</h2>
        <pre class="log" data-field="log" ref={logBox}>{log.length > 0 ? log.join("\n") : "(empty)"}</pre>
      </section>
      <section>
        <h2>Samples</h2>
        {samples.length === 0 ? <p class="muted">No samples yet.</p> : (
          <table class="samples">
            <thead>
              <tr>
                <th class="num">Step</th>
                <th>Prompt</th>
                <th>Output</th>
              </tr>
            </thead>
            <tbody>
              {samples.slice().reverse().map((s, i) => (
                <tr key={`${s.step}-${i}`}>
                  <td class="num">{s.step}</td>
                  <td class="text">{s.prompt}</td>
                  <td class="text">{shownAnswer(s.output)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {Object.keys(run.evalResults).length > 0 && (
        <section>
          <h2>Evaluation</h2>
          {Object.entries(run.evalResults).map(([label, result]) => (
            <div key={label}>
              <h3>{label}</h3>
              <pre class="config">{JSON.stringify(result, null, 2)}</pre>
            </div>
          ))}
        </section>
      )}
      {Object.keys(run.artifacts).length > 0 && (
        <section>
          <h2>Artifacts</h2>
          <dl class="facts">
            {Object.entries(run.artifacts).map((
              [name, path],
            ) => [
              <dt key={`${name}-k`}>{name}</dt>,
              <dd key={name}>
                <code>{path}</code>
              </dd>,
            ])}
          </dl>
        </section>
      )}
      <section>
        <h2>Config</h2>
        <pre class="config">{JSON.stringify(run.config, null, 2)}</pre>
      </section>
    </div>
  );
}
