/** The WebGPU adapter block of the System page and the landing page. */
import type { AdapterSummary } from "../../compute/gpu.ts";
import { formatBytes } from "../../islands/_format.ts";

/** Limits shown first: the ones that bound model size and kernel shapes. */
const KEY_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
];
const BYTE_LIMITS = new Set([
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxUniformBufferBindingSize",
]);

export function AdapterFacts({ adapter }: { adapter: AdapterSummary }) {
  return (
    <dl class="facts adapter">
      <dt>Adapter</dt>
      <dd data-field="description">{adapter.description}</dd>
      <dt>Vendor</dt>
      <dd>{adapter.vendor || "—"}</dd>
      <dt>Architecture</dt>
      <dd>{adapter.architecture || "—"}</dd>
      <dt>Device</dt>
      <dd>{adapter.device || "—"}</dd>
      <dt>Kind</dt>
      <dd data-field="fallback">
        {adapter.isFallback ? "CPU fallback (software Vulkan: correct but slow)" : "hardware GPU"}
      </dd>
      <dt>shader-f16</dt>
      <dd>{adapter.features.includes("shader-f16") ? "yes" : "no"}</dd>
    </dl>
  );
}

function limitValue(name: string, value: number): string {
  return BYTE_LIMITS.has(name) ? `${formatBytes(value)} (${value})` : String(value);
}

export function AdapterLimits({ adapter, all }: { adapter: AdapterSummary; all: boolean }) {
  const names = all
    ? [...KEY_LIMITS, ...Object.keys(adapter.limits).filter((n) => !KEY_LIMITS.includes(n)).sort()]
    : KEY_LIMITS;
  return (
    <table class="compact limits">
      <tbody>
        {names.filter((name) => name in adapter.limits).map((name) => (
          <tr key={name}>
            <th>{name}</th>
            <td class="num">{limitValue(name, adapter.limits[name])}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function AdapterFeatures({ adapter }: { adapter: AdapterSummary }) {
  if (adapter.features.length === 0) return <p class="muted">No optional features.</p>;
  return (
    <ul class="tags">
      {adapter.features.map((feature) => <li key={feature}>{feature}</li>)}
    </ul>
  );
}
