/** GPU memory of the lab's buffer pool, refreshed from GET /api/system every two seconds. */
import { useEffect, useState } from "preact/hooks";
import type { MemoryStats } from "../compute/buffers.ts";
import { formatBytes } from "./_format.ts";

export interface GpuMemoryProps {
  initial: MemoryStats;
  pollMs: number;
}

export default function GpuMemory({ initial, pollMs }: GpuMemoryProps) {
  const [memory, setMemory] = useState(initial);
  const [stale, setStale] = useState(false);
  useEffect(() => {
    let stopped = false;
    const poll = async () => {
      try {
        const response = await fetch("/api/system", { headers: { accept: "application/json" } });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const body = await response.json() as { memory: MemoryStats };
        if (!stopped) {
          setMemory(body.memory);
          setStale(false);
        }
      } catch {
        if (!stopped) setStale(true);
      }
    };
    const timer = setInterval(poll, pollMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [pollMs]);
  const tags = Object.entries(memory.byTag).filter(([, bytes]) => bytes > 0).sort((a, b) => b[1] - a[1]);
  return (
    <div class={stale ? "gpu-memory stale" : "gpu-memory"}>
      <dl class="facts">
        <dt>Live</dt>
        <dd data-field="liveBytes">{formatBytes(memory.liveBytes)}</dd>
        <dt>Peak live</dt>
        <dd>{formatBytes(memory.peakLiveBytes)}</dd>
        <dt>Pooled (free for reuse)</dt>
        <dd>{formatBytes(memory.pooledBytes)}</dd>
        <dt>Allocated</dt>
        <dd>{formatBytes(memory.allocatedBytes)} (peak {formatBytes(memory.peakAllocatedBytes)})</dd>
      </dl>
      {tags.length > 0
        ? (
          <table class="compact">
            <thead>
              <tr>
                <th>Tag</th>
                <th class="num">Live</th>
              </tr>
            </thead>
            <tbody>
              {tags.map(([tag, bytes]) => (
                <tr key={tag}>
                  <td>{tag}</td>
                  <td class="num">{formatBytes(bytes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
        : <p class="muted">No tensors are live.</p>}
      {stale && <p class="muted">The server did not answer; showing the last figures.</p>}
    </div>
  );
}
