/** The "export merged" button of an adapter on the Models page: queues an export run and links to it. */
import { useState } from "preact/hooks";

export interface ExportMergedProps {
  adapter: string;
  /** The base model, when the catalog knows it; otherwise the export uses the base the adapter records. */
  base: string | null;
}

export default function ExportMerged({ adapter, base }: ExportMergedProps) {
  const [dtype, setDtype] = useState("f16");
  const [runId, setRunId] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const launch = async () => {
    setError(null);
    const response = await fetch("/api/runs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        kind: "export",
        config: { adapter, base, dtype },
        name: `export ${adapter}`,
      }),
    });
    const body = await response.json();
    if (response.ok) setRunId(body.id);
    else setError(body.error);
  };
  return (
    <span class="export-merged">
      <select name="dtype" value={dtype} onChange={(e) => setDtype((e.target as HTMLSelectElement).value)}>
        <option value="f16">f16</option>
        <option value="bf16">bf16</option>
        <option value="f32">f32</option>
      </select>{" "}
      <button type="button" onClick={launch} disabled={runId !== null}>Export merged</button>{" "}
      {runId !== null && <a href={`/runs/${runId}`}>export run #{runId}</a>}
      {error && <span class="error">{error}</span>}
    </span>
  );
}
