/**
 * Resumable training checkpoints: trainable weights, optimizer states (f32 or 8-bit codes), step, data position
 * and RNG, written to a temporary folder and renamed into place, so a crash or a full disk mid-write leaves the
 * previous checkpoint intact.
 */
import type { Tensor } from "../../compute/tensor.ts";
import { joinPath, writeTextFileAtomic } from "../checkpoint/file_io.ts";
import { openCheckpoint, type TensorToWrite, writeSafetensors } from "../checkpoint/mod.ts";

export interface TrainingPosition {
  /** Optimizer steps completed. */
  step: number;
  epoch: number;
  /** Next batch index within the epoch. */
  batchIndex: number;
  rngCounter: number;
  /** Losses of completed steps (so a resumed run reports the whole curve). */
  losses: number[];
  /** A fingerprint of the settings that must not change across a resume. */
  configKey: string;
}

const STATE = "state.json";
const TENSORS = "tensors.safetensors";

function safetensorsEntry(name: string, t: Tensor, data: ArrayBufferView): TensorToWrite {
  if (t.dtype === "f32") return { name, dtype: "f32", shape: [...t.shape], data: data as Float32Array };
  // u32 codes (8-bit optimizer states) are stored as raw bytes.
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dtype: "u8", shape: [bytes.length], data: bytes };
}

/** Writes `<dir>/step-<n>` atomically and prunes older checkpoints (keeping `keep`). */
export async function saveTrainingState(
  dir: string,
  position: TrainingPosition,
  tensors: Map<string, Tensor>,
  keep = 2,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const final = joinPath(dir, `step-${String(position.step).padStart(6, "0")}`);
  const temp = `${final}.tmp-${Deno.pid}`;
  await Deno.remove(temp, { recursive: true }).catch(() => {});
  try {
    await Deno.mkdir(temp);
    const entries: TensorToWrite[] = [];
    for (const [name, t] of tensors) entries.push(safetensorsEntry(name, t, await t.read()));
    await writeSafetensors(joinPath(temp, TENSORS), entries);
    await writeTextFileAtomic(joinPath(temp, STATE), JSON.stringify(position) + "\n");
    await Deno.remove(final, { recursive: true }).catch(() => {});
    await Deno.rename(temp, final);
  } catch (err) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    throw new Error(
      `could not write the training checkpoint ${final}: ${
        (err as Error).message
      }; the previous one is intact`,
    );
  }
  const all = await listCheckpoints(dir);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) await Deno.remove(old, { recursive: true });
  return final;
}

/** Completed checkpoints, oldest first. */
export async function listCheckpoints(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory && /^step-\d+$/.test(entry.name)) names.push(entry.name);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return names.sort().map((n) => joinPath(dir, n));
}

/** Loads the newest checkpoint into the given tensors (same names and sizes); null when there is none. */
export async function loadTrainingState(
  dir: string,
  tensors: Map<string, Tensor>,
): Promise<TrainingPosition | null> {
  const latest = (await listCheckpoints(dir)).at(-1);
  if (!latest) return null;
  const position = JSON.parse(await Deno.readTextFile(joinPath(latest, STATE))) as TrainingPosition;
  const file = joinPath(latest, TENSORS);
  const checkpoint = await openCheckpoint(file);
  try {
    for (const [name, t] of tensors) {
      if (!checkpoint.has(name)) {
        throw new TypeError(`${file}: no tensor "${name}"; was the run's configuration changed?`);
      }
      const host = await checkpoint.read(name, { as: "raw" });
      const bytes = host.data as ArrayBufferView;
      if (bytes.byteLength !== t.bytes) {
        throw new RangeError(`${file}: "${name}" holds ${bytes.byteLength} bytes, the run needs ${t.bytes}`);
      }
      const raw = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const view = t.dtype === "f32"
        ? new Float32Array(raw.slice().buffer)
        : new Uint32Array(raw.slice().buffer);
      t.write(view);
    }
  } finally {
    checkpoint.close();
  }
  return position;
}
