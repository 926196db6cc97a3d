/** The New run page: recipe, model, dataset, every hyperparameter, and the estimate before launch. */
import NewRunForm, { type RecipeSettings } from "../islands/NewRunForm.tsx";
import { formatBytes } from "../islands/_format.ts";
import { catalog } from "../lib/lab/catalog.ts";
import { TRAIN_EVAL_DEFAULTS } from "../lib/lab/jobs.ts";
import type { LabRoutes } from "../lib/server/routes.ts";
import { Island } from "../lib/server/render.tsx";
import { RECIPE_DEFAULTS } from "../lib/train/config.ts";

export const nav = { label: "New run", href: "/new-run", order: 20 };

function recipeSettings(recipe: "qlora" | "full"): RecipeSettings {
  // recipe and resume are not settings of the form: the radio picks the recipe, resume is per run.
  const { recipe: _recipe, resume: _resume, ...settings } = RECIPE_DEFAULTS[recipe];
  return { ...settings, ...TRAIN_EVAL_DEFAULTS };
}

export default function routes({ app, lab, page }: LabRoutes) {
  app.get("/new-run", async (c) => {
    const { models, datasets } = await catalog(lab.roots);
    const props = {
      recipes: { qlora: recipeSettings("qlora"), full: recipeSettings("full") },
      defaultModels: { qlora: "tiny-qwen2", full: "tiny-gpt2" },
      models: models.map((m) => ({
        id: m.id,
        label: `${m.id}${m.builtin ? " (built-in)" : ""} — ${m.summary.architecture}, ${
          (m.summary.parameters / 1e6).toFixed(m.summary.parameters < 1e7 ? 2 : 0)
        }M params`,
      })),
      datasets: datasets.map((d) => ({
        id: d.id,
        label: `${d.id === "sample" ? "sample (shipped anekdots sample)" : d.id} — ${formatBytes(d.bytes)}`,
      })),
    };
    return page(c, "New run", <Island of={NewRunForm} props={props} />);
  });
}
