import assert from "node:assert/strict";

const root = new URL("../../../", import.meta.url).pathname;

async function runCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}main.ts`, "metrics", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

async function files(refs: string, hyps: string): Promise<{ dir: string; refs: string; hyps: string }> {
  const dir = await Deno.makeTempDir({ prefix: "ostrota-metrics-" });
  await Deno.writeTextFile(`${dir}/refs.txt`, refs);
  await Deno.writeTextFile(`${dir}/hyps.txt`, hyps);
  return { dir, refs: `${dir}/refs.txt`, hyps: `${dir}/hyps.txt` };
}

const REFS = "Штирлиц открыл дверь. Свет погас.\nthe quick brown fox jumps over the lazy dog\n";
const HYPS = "Штирлиц закрыл дверь, и свет погас.\nthe fast brown foxes jumped over a lazy dog\n";

Deno.test("metrics CLI: --json prints the scores as one JSON object last", async () => {
  const paths = await files(REFS, HYPS);
  try {
    const result = await runCli("--refs", paths.refs, "--hyps", paths.hyps, "--json");
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split("\n");
    const report = JSON.parse(lines[lines.length - 1]);
    assert.deepEqual(Object.keys(report), [
      "bleu",
      "bleu_signature",
      "sentence_bleu",
      "meteor",
      "meteor_per_sentence",
      "meteor_ru",
    ]);
    assert.ok(Math.abs(report.meteor_per_sentence[0] - 0.5010893246) < 1e-9);
    assert.ok(Math.abs(report.meteor_per_sentence[1] - 0.8654513889) < 1e-9);
    assert.ok(
      Math.abs(report.meteor - (report.meteor_per_sentence[0] + report.meteor_per_sentence[1]) / 2) < 1e-15,
    );
    assert.equal(report.sentence_bleu.length, 2);
    assert.match(report.bleu_signature, /^nrefs:1\|case:mixed\|eff:no\|tok:13a\|smooth:exp\|version:/);
    assert.ok(report.bleu > 0 && report.bleu < 100);
  } finally {
    await Deno.remove(paths.dir, { recursive: true });
  }
});

Deno.test("metrics CLI: readable summary without --json, --tokenize word accepted", async () => {
  const paths = await files(REFS, HYPS);
  try {
    const result = await runCli("--refs", paths.refs, "--hyps", paths.hyps, "--tokenize", "word");
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /BLEU\s+\d+\.\d\d/);
    assert.match(result.stdout, /METEOR\s+0\.\d{4}\s+\(nltk, word tokens/);
    assert.ok(!result.stdout.includes("{"));
  } finally {
    await Deno.remove(paths.dir, { recursive: true });
  }
});

Deno.test("metrics CLI: unequal line counts, a missing file and a bad option are clear errors", async () => {
  const paths = await files(REFS, "only one line\n");
  try {
    const unequal = await runCli("--refs", paths.refs, "--hyps", paths.hyps);
    assert.equal(unequal.code, 1);
    assert.match(unequal.stderr, /hyps\.txt has 1 lines but .*refs\.txt has 2/);
    const missing = await runCli("--refs", paths.refs, "--hyps", `${paths.dir}/absent.txt`);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /absent\.txt does not exist/);
    const badOption = await runCli("--refs", paths.refs, "--hyps", paths.hyps, "--tokenize", "chars");
    assert.equal(badOption.code, 1);
    assert.match(badOption.stderr, /--tokenize must be whitespace or word/);
  } finally {
    await Deno.remove(paths.dir, { recursive: true });
  }
});

Deno.test("metrics CLI: an empty hypothesis line scores 0, never NaN", async () => {
  const paths = await files("a b c d\nthe cat sat on the mat\n", "\nthe cat sat on the mat\n");
  try {
    const result = await runCli("--refs", paths.refs, "--hyps", paths.hyps, "--json");
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!result.stdout.includes("NaN"));
    const lines = result.stdout.trim().split("\n");
    const report = JSON.parse(lines[lines.length - 1]);
    assert.equal(report.sentence_bleu[0], 0);
    assert.equal(report.meteor_per_sentence[0], 0);
    assert.ok(Math.abs(report.sentence_bleu[1] - 100) < 1e-9);
  } finally {
    await Deno.remove(paths.dir, { recursive: true });
  }
});
