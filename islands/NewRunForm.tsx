/**
 * The New run form: a recipe (its seed settings prefilled), a model and a dataset from the lab's lists, every
 * hyperparameter editable, and the server's estimate of GPU memory and time, refreshed as settings change.
 * Launch queues a "train" run and opens its page.
 */
import { useEffect, useState } from "preact/hooks";
import { formatBytes, formatDuration } from "./_format.ts";

type Value = number | string | boolean | string[] | null;
type Settings = Record<string, Value>;
/** One recipe's settings as the form edits them. */
export type RecipeSettings = Settings;

export interface PickerOption {
  id: string;
  label: string;
}

export interface NewRunFormProps {
  /** Each recipe's seed settings (RECIPE_DEFAULTS plus the eval settings), without model/dataset/out. */
  recipes: Record<"qlora" | "full", Settings>;
  /** The built-in model each recipe starts with. */
  defaultModels: Record<"qlora" | "full", string>;
  models: PickerOption[];
  datasets: PickerOption[];
}

interface FieldSpec {
  key: string;
  label: string;
  kind: "int" | "number" | "bool" | "list" | "select";
  /** Empty means null (e.g. no step limit: epochs decide). */
  nullable?: boolean;
  choices?: string[];
  /** Shown for this recipe only. */
  only?: "qlora";
}

const GROUPS: { title: string; fields: FieldSpec[] }[] = [
  {
    title: "Schedule",
    fields: [
      { key: "maxSteps", label: "Max steps (empty: epochs decide)", kind: "int", nullable: true },
      { key: "epochs", label: "Epochs", kind: "number" },
      { key: "lr", label: "Learning rate", kind: "number" },
      { key: "schedule", label: "Schedule", kind: "select", choices: ["linear", "cosine", "constant"] },
      { key: "warmupSteps", label: "Warmup steps", kind: "int" },
      { key: "weightDecay", label: "Weight decay", kind: "number" },
      { key: "maxGradNorm", label: "Max grad norm", kind: "number" },
      { key: "optimizer", label: "Optimizer", kind: "select", choices: ["adamw", "adamw8bit"] },
    ],
  },
  {
    title: "Batches and data",
    fields: [
      { key: "batchSize", label: "Batch size", kind: "int" },
      { key: "gradAccum", label: "Gradient accumulation", kind: "int" },
      { key: "maxSeqLen", label: "Max sequence length", kind: "int" },
      { key: "limit", label: "Examples (top by mark; empty: all)", kind: "int", nullable: true },
      { key: "evalSize", label: "Held-out fraction", kind: "number" },
      { key: "splitSeed", label: "Split seed", kind: "int" },
      { key: "seed", label: "Seed", kind: "int" },
      { key: "packing", label: "Packing", kind: "bool" },
      { key: "gradientCheckpointing", label: "Gradient checkpointing", kind: "bool" },
    ],
  },
  {
    title: "LoRA and quantisation",
    fields: [
      { key: "loraR", label: "LoRA r", kind: "int", only: "qlora" },
      { key: "loraAlpha", label: "LoRA alpha", kind: "number", only: "qlora" },
      { key: "loraDropout", label: "LoRA dropout", kind: "number", only: "qlora" },
      { key: "useRslora", label: "rsLoRA scaling", kind: "bool", only: "qlora" },
      { key: "targetModules", label: "Target modules (comma-separated)", kind: "list", only: "qlora" },
      { key: "doubleQuant", label: "Double quantisation", kind: "bool", only: "qlora" },
    ],
  },
  {
    title: "Checkpoints, samples, evaluation",
    fields: [
      { key: "checkpointEvery", label: "Checkpoint every N steps (0: end only)", kind: "int" },
      { key: "sampleEvery", label: "Sample every N steps (0: never)", kind: "int" },
      { key: "evalCount", label: "Eval examples (before and after)", kind: "int" },
      { key: "evalMaxNewTokens", label: "Eval max new tokens", kind: "int" },
      { key: "evalBatchSize", label: "Eval batch size", kind: "int" },
    ],
  },
];

interface Estimate {
  memory: {
    totalBytes: number;
    parts: { label: string; bytes: number }[];
    trainableParameters: number;
    assumptions: string[];
  };
  time: { steps: number; tokensPerStep: number; seconds: number | null; assumptions: string[] };
}

const RECIPE_LABELS = { qlora: "QLoRA — big model", full: "Full fine-tuning — small model" } as const;

function parseField(spec: FieldSpec, raw: string | boolean): Value {
  if (spec.kind === "bool") return raw as boolean;
  const text = String(raw).trim();
  if (spec.kind === "select") return text;
  if (spec.kind === "list") return text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (text === "" && spec.nullable) return null;
  // Left as typed when it is not a number: the server's 400 names the field.
  const n = Number(text);
  return text === "" || Number.isNaN(n) ? text : n;
}

function Field({ spec, value, onChange }: { spec: FieldSpec; value: Value; onChange: (v: Value) => void }) {
  const id = `f-${spec.key}`;
  let input;
  if (spec.kind === "bool") {
    input = (
      <input
        id={id}
        name={spec.key}
        type="checkbox"
        checked={value === true}
        onChange={(e) => onChange(parseField(spec, (e.target as HTMLInputElement).checked))}
      />
    );
  } else if (spec.kind === "select") {
    input = (
      <select
        id={id}
        name={spec.key}
        value={String(value)}
        onChange={(e) => onChange(parseField(spec, (e.target as HTMLSelectElement).value))}
      >
        {spec.choices!.map((c) => <option key={c} value={c}>{c}</option>)}
      </select>
    );
  } else {
    const shown = value === null ? "" : Array.isArray(value) ? value.join(", ") : String(value);
    input = (
      <input
        id={id}
        name={spec.key}
        value={shown}
        size={spec.kind === "list" ? 30 : 10}
        style={{ maxWidth: "100%" }}
        onChange={(e) => onChange(parseField(spec, (e.target as HTMLInputElement).value))}
      />
    );
  }
  return (
    <>
      <dt>
        <label for={id}>{spec.label}</label>
      </dt>
      <dd>{input}</dd>
    </>
  );
}

export default function NewRunForm(props: NewRunFormProps) {
  const [recipe, setRecipe] = useState<"qlora" | "full">("qlora");
  const [settings, setSettings] = useState<Settings>(props.recipes.qlora);
  const [model, setModel] = useState(props.defaultModels.qlora);
  const [dataset, setDataset] = useState(props.datasets[0]?.id ?? "sample");
  const [name, setName] = useState("");
  const [estimate, setEstimate] = useState<Estimate | null>(null);
  const [estimateError, setEstimateError] = useState<string | null>(null);
  const [launchError, setLaunchError] = useState<string | null>(null);
  const [launching, setLaunching] = useState(false);

  const config = () => ({ ...settings, recipe, model, dataset });

  useEffect(() => {
    let stale = false;
    // Debounced: typing a number should not send a request per keystroke.
    const timer = setTimeout(async () => {
      try {
        const response = await fetch("/api/estimate", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(config()),
        });
        const body = await response.json();
        if (stale) return;
        if (response.ok) {
          setEstimate(body as Estimate);
          setEstimateError(null);
        } else {
          setEstimate(null);
          setEstimateError(body.error);
        }
      } catch (err) {
        if (!stale) setEstimateError(`the estimate could not be fetched: ${(err as Error).message}`);
      }
    }, 250);
    return () => {
      stale = true;
      clearTimeout(timer);
    };
  }, [recipe, settings, model, dataset]);

  const pickRecipe = (next: "qlora" | "full") => {
    setRecipe(next);
    setSettings(props.recipes[next]);
    setModel(props.defaultModels[next]);
  };

  const launch = async (event: Event) => {
    event.preventDefault();
    setLaunching(true);
    setLaunchError(null);
    try {
      const response = await fetch("/api/runs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          kind: "train",
          config: config(),
          ...(name.trim() ? { name: name.trim() } : {}),
        }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error);
      location.href = `/runs/${body.id}`;
    } catch (err) {
      setLaunchError((err as Error).message);
      setLaunching(false);
    }
  };

  return (
    <form class="new-run" onSubmit={launch}>
      <div class="columns">
        <section>
          <h2>Recipe</h2>
          {(["qlora", "full"] as const).map((r) => (
            <label key={r} style={{ marginRight: "1.5rem" }}>
              <input
                type="radio"
                name="recipe"
                value={r}
                checked={recipe === r}
                onChange={() => pickRecipe(r)}
              />{" "}
              {RECIPE_LABELS[r]}
            </label>
          ))}
          <dl class="facts">
            <dt>
              <label for="f-model">Model</label>
            </dt>
            <dd>
              <select
                id="f-model"
                name="model"
                value={model}
                onChange={(e) => setModel((e.target as HTMLSelectElement).value)}
              >
                {props.models.map((m) => <option key={m.id} value={m.id}>{m.label}</option>)}
              </select>
            </dd>
            <dt>
              <label for="f-dataset">Dataset</label>
            </dt>
            <dd>
              <select
                id="f-dataset"
                name="dataset"
                value={dataset}
                onChange={(e) => setDataset((e.target as HTMLSelectElement).value)}
              >
                {props.datasets.map((d) => <option key={d.id} value={d.id}>{d.label}</option>)}
              </select>
            </dd>
            <dt>
              <label for="f-name">Run name</label>
            </dt>
            <dd>
              <input
                id="f-name"
                name="name"
                value={name}
                placeholder="optional"
                onInput={(e) => setName((e.target as HTMLInputElement).value)}
              />
            </dd>
          </dl>
        </section>
        <section class="estimate" data-field="estimate">
          <h2>Estimate</h2>
          {estimateError && <p class="error">{estimateError}</p>}
          {estimate && (
            <div>
              <div>
                <p>
                  GPU memory ≈{" "}
                  <strong data-field="memory-total">{formatBytes(estimate.memory.totalBytes)}</strong>{" "}
                  <span class="muted">
                    ({estimate.memory.trainableParameters.toLocaleString("en")} trainable parameters)
                  </span>
                </p>
                <table class="compact">
                  <tbody>
                    {estimate.memory.parts.map((p) => (
                      <tr key={p.label}>
                        <td>{p.label}</td>
                        <td class="num">{formatBytes(p.bytes)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <ul class="muted">
                  {estimate.memory.assumptions.map((a) => <li key={a}>{a}</li>)}
                </ul>
              </div>
              <div>
                <p>
                  Time:{" "}
                  <strong data-field="time">
                    {estimate.time.seconds === null
                      ? "unknown (no earlier run of this model measured its speed)"
                      : `≈ ${formatDuration(estimate.time.seconds * 1000)}`}
                  </strong>
                </p>
                <ul class="muted">
                  {estimate.time.assumptions.map((a) => <li key={a}>{a}</li>)}
                </ul>
              </div>
            </div>
          )}
        </section>
      </div>
      <div class="columns">
        {GROUPS.map((group) => {
          const fields = group.fields.filter((f) => !f.only || f.only === recipe);
          if (fields.length === 0) return null;
          return (
            <section key={group.title}>
              <h2>{group.title}</h2>
              <dl class="facts">
                {fields.map((spec) => (
                  <Field
                    key={spec.key}
                    spec={spec}
                    value={settings[spec.key] ?? null}
                    onChange={(v) => setSettings((s) => ({ ...s, [spec.key]: v }))}
                  />
                ))}
              </dl>
            </section>
          );
        })}
      </div>
      {launchError && <p class="error" data-field="launch-error">{launchError}</p>}
      <button type="submit" disabled={launching}>{launching ? "Launching…" : "Launch run"}</button>
    </form>
  );
}
