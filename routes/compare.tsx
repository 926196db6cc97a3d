/**
 * The Compare page: the seed's comparison table of the chosen train runs (lib/report's figures), before/after
 * bar charts, example answers side by side, and CSV / Markdown downloads. Runs come from `?ids=`, set by the
 * checkboxes on the Runs page or the picker here.
 */
import { formatDuration, shownAnswer } from "../lib/report/mod.ts";
import { answerPairs, isComparable, parseRunIds, summaries } from "../lib/lab/compare.ts";
import type { RunSummary } from "../lib/report/mod.ts";
import type { LabRoutes } from "../lib/server/routes.ts";
import { BeforeAfterBars } from "./_components/bars.tsx";

export const nav = { label: "Compare", href: "/compare", order: 40 };

const METRICS = [
  { title: "BLEU", pick: (e: RunSummary["before"]) => e.bleu, digits: 2 },
  { title: "METEOR", pick: (e: RunSummary["before"]) => e.meteor, digits: 3 },
  { title: "METEOR (ru)", pick: (e: RunSummary["before"]) => e.meteorRu, digits: 3 },
  { title: "Answer words", pick: (e: RunSummary["before"]) => e.meanAnswerWords, digits: 1 },
];

function Picker(
  { runs, chosen }: { runs: { id: number; name: string; recipe: string }[]; chosen: number[] },
) {
  if (runs.length === 0) {
    return (
      <p class="muted">
        No completed train run yet: launch one on{" "}
        <a href="/new-run">New run</a>; it is comparable once its evaluation after training is stored.
      </p>
    );
  }
  return (
    <form method="get" action="/compare" class="compare-picker">
      {runs.map((run) => (
        <label key={run.id} style={{ marginRight: "1.2rem", display: "inline-block" }}>
          <input type="checkbox" name="ids" value={run.id} checked={chosen.includes(run.id)} /> #{run.id}{" "}
          {run.name} <span class="muted">({run.recipe})</span>
        </label>
      ))}
      <button type="submit">Compare</button>
    </form>
  );
}

function Table({ runs }: { runs: RunSummary[] }) {
  const change = (before: number, after: number, digits: number) => (
    <>
      {before.toFixed(digits)} → <strong>{after.toFixed(digits)}</strong>
    </>
  );
  return (
    <table class="compare">
      <thead>
        <tr>
          <th>Run</th>
          <th>Recipe</th>
          <th>Model</th>
          <th class="num">Training time</th>
          <th class="num">Examples</th>
          <th class="num">BLEU</th>
          <th class="num">METEOR</th>
          <th class="num">METEOR (ru)</th>
          <th class="num">Answer words</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((run) => (
          <tr key={run.name}>
            <td>{run.name}</td>
            <td>{run.recipe}</td>
            <td>{run.model}</td>
            <td class="num">{formatDuration(run.trainSeconds)}</td>
            <td class="num">{run.examplesUsed}</td>
            <td class="num">{change(run.before.bleu, run.after.bleu, 2)}</td>
            <td class="num">{change(run.before.meteor, run.after.meteor, 3)}</td>
            <td class="num">{change(run.before.meteorRu, run.after.meteorRu, 3)}</td>
            <td class="num">{change(run.before.meanAnswerWords, run.after.meanAnswerWords, 1)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export default function routes({ app, lab, page }: LabRoutes) {
  app.get("/compare", (c) => {
    const requested = c.req.queries("ids") ?? [];
    const comparable = lab.store.listRuns(1000).filter(isComparable).map((run) => ({
      id: run.id,
      name: run.name,
      recipe: String(run.config.recipe),
    }));
    if (requested.length === 0) {
      return page(
        c,
        "Compare",
        <section>
          <h2>Pick runs</h2>
          <Picker runs={comparable} chosen={[]} />
        </section>,
      );
    }
    const ids = parseRunIds(requested);
    const runs = summaries(lab.store, ids);
    const query = `ids=${ids.join(",")}`;
    return page(
      c,
      "Compare",
      <>
        <section>
          <h2>Runs</h2>
          <Picker runs={comparable} chosen={ids} />
        </section>
        <section>
          <h2>Before → after fine-tuning</h2>
          <Table runs={runs} />
          <p class="muted">
            BLEU: sacreBLEU corpus BLEU (13a, 0-100). METEOR: nltk's meteor_score, mean over sentences (0-1).
            METEOR (ru): the same with Snowball Russian stems. Held-out examples of each run's own split.
          </p>
          <p>
            Download: <a href={`/api/compare.csv?${query}`} download>CSV</a> ·{" "}
            <a href={`/api/compare.md?${query}`} download>Markdown</a> ·{" "}
            <a href={`/api/compare?${query}`}>JSON</a>
          </p>
        </section>
        <section class="charts">
          {METRICS.map((m) => (
            <BeforeAfterBars
              key={m.title}
              title={m.title}
              digits={m.digits}
              groups={runs.map((run) => ({
                label: run.name.split(" ")[0],
                before: m.pick(run.before),
                after: m.pick(run.after),
              }))}
            />
          ))}
        </section>
        <section>
          <h2>Example answers</h2>
          {runs.map((run) => (
            <div key={run.name}>
              <h3>{run.name}</h3>
              <table class="samples">
                <thead>
                  <tr>
                    <th>Prompt</th>
                    <th>Reference</th>
                    <th>Before</th>
                    <th>After</th>
                  </tr>
                </thead>
                <tbody>
                  {answerPairs(run).map((pair, i) => (
                    <tr key={i}>
                      <td class="text">{pair.prompt}</td>
                      <td class="text">{pair.reference}</td>
                      <td class="text">{pair.before === null ? "—" : shownAnswer(pair.before)}</td>
                      <td class="text">{shownAnswer(pair.after)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ))}
        </section>
      </>,
    );
  });
}
