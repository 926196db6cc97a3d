import assert from "node:assert/strict";
import {
  bleuSignature,
  bleuTokens,
  computeBleu,
  corpusBleu,
  sentenceBleu,
} from "../../../lib/metrics/bleu.ts";
import { tokenize13a } from "../../../lib/metrics/tokenizer_13a.ts";

const FIXTURE = new URL("../../fixtures/metrics/sacrebleu.json", import.meta.url);

function readFixture(): Record<string, unknown> | null {
  try {
    return JSON.parse(Deno.readTextFileSync(FIXTURE));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

const golden = readFixture();
const missing = golden === null;
const suffix = missing
  ? " (SKIPPED: fixture tests/fixtures/metrics/sacrebleu.json missing; run tests/goldens/metrics_goldens.py)"
  : "";

function close(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-9, `${what}: got ${actual}, sacreBLEU ${expected}`);
}

Deno.test("13a: identical hypothesis and reference of 4+ tokens score 100", () => {
  const sentence = "Штирлиц шёл по коридору, а навстречу ему шёл Мюллер.";
  // exp(log(100)) is 100.00000000000004 in IEEE doubles, in Python as here.
  close(sentenceBleu(sentence, [sentence]).score, 100, "identical sentence");
  close(corpusBleu([sentence, "a b c d"], [[sentence, "a b c d"]]).score, 100, "identical corpus");
});

Deno.test("BLEU by hand: one substituted word out of six", () => {
  // hyp "the cat sat on the mat" vs ref "the cat sat on a mat": 6 tokens each, bp = 1.
  // 1-grams: 5/6 (the x2 clipped to 1 in ref... ref has "the" once, hyp twice -> 1; cat sat on mat -> 4).
  // 2-grams: the cat, cat sat, sat on match; "on the", "the mat" do not -> 3/5.
  // 3-grams: the cat sat, cat sat on -> 2/4. 4-grams: the cat sat on -> 1/3.
  const score = corpusBleu(["the cat sat on the mat"], [["the cat sat on a mat"]]);
  assert.deepEqual(score.counts, [5, 3, 2, 1]);
  assert.deepEqual(score.totals, [6, 5, 4, 3]);
  assert.equal(score.bp, 1);
  const expected = 100 *
    Math.exp((Math.log(5 / 6) + Math.log(3 / 5) + Math.log(2 / 4) + Math.log(1 / 3)) / 4);
  assert.ok(Math.abs(score.score - expected) < 1e-12);
});

Deno.test("BLEU by hand: brevity penalty for a short exact prefix", () => {
  // hyp 4 tokens, ref 8 tokens: every n-gram matches, bp = exp(1 - 8/4) = e^-1.
  const score = corpusBleu(["a b c d"], [["a b c d e f g h"]]);
  assert.equal(score.bp, Math.exp(-1));
  assert.ok(Math.abs(score.score - 100 * Math.exp(-1)) < 1e-12);
});

Deno.test("BLEU: empty hypothesis and no overlap give 0, not NaN", () => {
  assert.equal(sentenceBleu("", ["Пустая гипотеза"]).score, 0);
  assert.equal(corpusBleu(["совсем другие слова"], [["nothing in common"]]).score, 0);
  assert.equal(sentenceBleu("", ["x"]).bp, 0);
});

Deno.test("sentence BLEU: exp smoothing with effective order, by hand", () => {
  // "Да ." vs "Да !": 1-grams 1/2, 2-grams 0/1 -> exp smoothing 100/(2*1) = 50; effective order 2.
  const score = sentenceBleu("Да.", ["Да!"]);
  assert.deepEqual(score.counts.slice(0, 2), [1, 0]);
  assert.ok(Math.abs(score.score - Math.exp((Math.log(50) + Math.log(50)) / 2)) < 1e-12);
});

Deno.test("BLEU: several references clip by the largest count and take the closest length", () => {
  const score = sentenceBleu("ok ok", ["ok", "ok ok ok"]);
  assert.deepEqual(score.counts.slice(0, 1), [2]);
  // lengths 1 and 3 are both 1 away from 2: sacreBLEU takes the shorter one.
  assert.equal(score.refLen, 1);
});

Deno.test("BLEU: mismatched lengths, empty references and non-strings are clear errors", () => {
  assert.throws(() => corpusBleu(["a", "b"], [["a"]]), /reference stream 1 has 1 lines but there are 2/);
  assert.throws(() => sentenceBleu("a", []), /sentence 1 has no reference/);
  assert.throws(() => corpusBleu([], [[]]), /at least one hypothesis/);
  assert.throws(() => corpusBleu([1 as unknown as string], [["a"]]), TypeError);
});

Deno.test("13a tokenizer: hand-checked rules", () => {
  assert.equal(tokenize13a("Hello, world!"), "Hello , world !");
  assert.equal(tokenize13a("3.14 and 1,000.50 but end."), "3.14 and 1,000.50 but end .");
  assert.equal(tokenize13a("2-3 e-mail"), "2 - 3 e-mail");
  assert.equal(tokenize13a("&quot;a&quot; &amp;lt;"), '" a " <');
  assert.equal(tokenize13a("line-\nbreak<skipped>"), "linebreak");
  assert.equal(tokenize13a("O'Neil's"), "O'Neil's");
  // Python's str.split() splits at U+0085 and U+001F but not at U+FEFF.
  assert.deepEqual(bleuTokens("a\u0085b\u001fc\ufeffd"), ["a", "b", "c\ufeffd"]);
});

Deno.test("BLEU signature: sacreBLEU layout", () => {
  assert.equal(bleuSignature(1), "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
  assert.equal(
    bleuSignature(2, { lowercase: true, effectiveOrder: true, smoothMethod: "floor" }),
    "nrefs:2|case:lc|eff:yes|tok:13a|smooth:floor[0.10]|version:2.6.0",
  );
  assert.equal(computeBleu([0, 0, 0, 0], [1, 0, 0, 0], 1, 1).score, 0);
});

type GoldenScore = {
  score: number;
  counts: number[];
  totals: number[];
  precisions: number[];
  bp: number;
  sys_len: number;
  ref_len: number;
  signature?: string;
};

function assertSameScore(actual: ReturnType<typeof corpusBleu>, expected: GoldenScore, what: string): void {
  close(actual.score, expected.score, `${what} score`);
  close(actual.bp, expected.bp, `${what} bp`);
  assert.deepEqual(actual.counts, expected.counts, `${what} counts`);
  assert.deepEqual(actual.totals, expected.totals, `${what} totals`);
  actual.precisions.forEach((p, i) => close(p, expected.precisions[i], `${what} precision ${i + 1}`));
  assert.equal(actual.sysLen, expected.sys_len, `${what} sys_len`);
  assert.equal(actual.refLen, expected.ref_len, `${what} ref_len`);
}

/** The signature without its version field, which names the sacreBLEU release installed on the GPU machine. */
function withoutVersion(signature: string): string {
  return signature.replace(/\|version:[^|]*$/, "");
}

Deno.test({
  name: `sacreBLEU golden: 13a tokenisation of every sentence${suffix}`,
  ignore: missing,
  fn() {
    const rows = golden!.tokenize_13a as { text: string; tokenized: string }[];
    assert.ok(rows.length > 40);
    for (const row of rows) assert.equal(tokenize13a(row.text), row.tokenized, JSON.stringify(row.text));
  },
});

Deno.test({
  name: `sacreBLEU golden: corpus BLEU (one ref, two refs, lowercase)${suffix}`,
  ignore: missing,
  fn() {
    const sentences = golden!.sentence as (GoldenScore & { hyp: string; refs: string[] })[];
    const single = sentences.filter((row) => row.refs.length === 1);
    const hyps = single.map((row) => row.hyp);
    const refs = [single.map((row) => row.refs[0])];
    const corpus = golden!.corpus as GoldenScore;
    assertSameScore(corpusBleu(hyps, refs), corpus, "corpus");
    assert.equal(withoutVersion(bleuSignature(refs.length)), withoutVersion(corpus.signature!));
    const lower = golden!.corpus_lowercase as GoldenScore;
    assertSameScore(corpusBleu(hyps, refs, { lowercase: true }), lower, "lowercase corpus");
    assert.equal(withoutVersion(bleuSignature(1, { lowercase: true })), withoutVersion(lower.signature!));
    const multi = sentences.filter((row) => row.refs.length === 2);
    const streams = [0, 1].map((k) => multi.map((row) => row.refs[k]));
    const multiGolden = golden!.corpus_multi_ref as GoldenScore;
    assertSameScore(corpusBleu(multi.map((row) => row.hyp), streams), multiGolden, "two-reference corpus");
    assert.equal(
      withoutVersion(bleuSignature(streams.length)),
      withoutVersion(multiGolden.signature!),
    );
  },
});

Deno.test({
  name: `sacreBLEU golden: sentence_bleu of every pair${suffix}`,
  ignore: missing,
  fn() {
    const sentences = golden!.sentence as (GoldenScore & { hyp: string; refs: string[] })[];
    for (const row of sentences) {
      assertSameScore(sentenceBleu(row.hyp, row.refs), row, `sentence_bleu(${JSON.stringify(row.hyp)})`);
    }
    assert.equal(
      withoutVersion(bleuSignature(1, { effectiveOrder: true })),
      withoutVersion(golden!.sentence_signature as string),
    );
  },
});

Deno.test({
  name: `sacreBLEU golden: an empty reference counts as length 0, as in sacreBLEU 2.6${suffix}`,
  ignore: missing,
  fn() {
    assertSameScore(
      corpusBleu(["some words"], [[""]]),
      golden!.empty_reference as GoldenScore,
      "empty reference",
    );
  },
});

Deno.test({
  name: `sacreBLEU golden: version recorded${suffix}`,
  ignore: missing,
  fn() {
    assert.match(golden!.sacrebleu_version as string, /^2\./);
  },
});
