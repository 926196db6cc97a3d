/**
 * The Porter stemmer exactly as nltk's `nltk.stem.porter.PorterStemmer()` in its default NLTK_EXTENSIONS
 * mode (nltk 3.8/3.9), which METEOR's stem stage uses. A port of nltk's rule tables and conditions, in
 * nltk's order; only the NLTK_EXTENSIONS branches are kept because that is the mode nltk's METEOR uses.
 */

/** nltk's table of irregular forms, mapped to the stem it returns for them without running the steps. */
const IRREGULAR_FORMS: Record<string, string[]> = {
  sky: ["sky", "skies"],
  die: ["dying"],
  lie: ["lying"],
  tie: ["tying"],
  news: ["news"],
  inning: ["innings", "inning"],
  outing: ["outings", "outing"],
  canning: ["cannings", "canning"],
  howe: ["howe"],
  proceed: ["proceed"],
  exceed: ["exceed"],
  succeed: ["succeed"],
};

const POOL = new Map<string, string>(
  Object.entries(IRREGULAR_FORMS).flatMap(([stem, forms]) => forms.map((form) => [form, stem] as const)),
);

const VOWELS = new Set(["a", "e", "i", "o", "u"]);

type Condition = ((stem: string) => boolean) | null;
type Rule = readonly [suffix: string, replacement: string, condition: Condition];

function isConsonant(word: string, i: number): boolean {
  if (VOWELS.has(word[i])) return false;
  if (word[i] === "y") return i === 0 ? true : !isConsonant(word, i - 1);
  return true;
}

/** Porter's m: the number of vowel-consonant sequences (`vc` in the c/v pattern of the stem). */
function measure(stem: string): number {
  let pattern = "";
  for (let i = 0; i < stem.length; i++) pattern += isConsonant(stem, i) ? "c" : "v";
  return pattern.split("vc").length - 1;
}

const hasPositiveMeasure = (stem: string): boolean => measure(stem) > 0;

function containsVowel(stem: string): boolean {
  for (let i = 0; i < stem.length; i++) if (!isConsonant(stem, i)) return true;
  return false;
}

function endsDoubleConsonant(word: string): boolean {
  return word.length >= 2 && word[word.length - 1] === word[word.length - 2] &&
    isConsonant(word, word.length - 1);
}

/** Condition *o, plus nltk's extension that a two-letter vowel-consonant word also counts. */
function endsCvc(word: string): boolean {
  const n = word.length;
  return (n >= 3 && isConsonant(word, n - 3) && !isConsonant(word, n - 2) && isConsonant(word, n - 1) &&
    !["w", "x", "y"].includes(word[n - 1])) ||
    (n === 2 && !isConsonant(word, 0) && isConsonant(word, 1));
}

function replaceSuffix(word: string, suffix: string, replacement: string): string {
  return suffix === "" ? word + replacement : word.slice(0, word.length - suffix.length) + replacement;
}

/** nltk `_apply_rule_list`: the first rule whose suffix matches decides, whether or not its condition holds. */
function applyRuleList(word: string, rules: readonly Rule[]): string {
  for (const [suffix, replacement, condition] of rules) {
    if (suffix === "*d" && endsDoubleConsonant(word)) {
      const stem = word.slice(0, -2);
      return condition === null || condition(stem) ? stem + replacement : word;
    }
    if (word.endsWith(suffix)) {
      const stem = replaceSuffix(word, suffix, "");
      return condition === null || condition(stem) ? stem + replacement : word;
    }
  }
  return word;
}

function step1a(word: string): string {
  if (word.endsWith("ies") && word.length === 4) return replaceSuffix(word, "ies", "ie");
  return applyRuleList(word, [["sses", "ss", null], ["ies", "i", null], ["ss", "ss", null], ["s", "", null]]);
}

function step1b(word: string): string {
  if (word.endsWith("ied")) {
    return word.length === 4 ? replaceSuffix(word, "ied", "ie") : replaceSuffix(word, "ied", "i");
  }
  if (word.endsWith("eed")) {
    const stem = replaceSuffix(word, "eed", "");
    return measure(stem) > 0 ? stem + "ee" : word;
  }
  let intermediate: string | null = null;
  for (const suffix of ["ed", "ing"]) {
    if (word.endsWith(suffix)) {
      const candidate = replaceSuffix(word, suffix, "");
      if (containsVowel(candidate)) {
        intermediate = candidate;
        break;
      }
    }
  }
  if (intermediate === null) return word;
  const stemmed = intermediate;
  const last = stemmed[stemmed.length - 1];
  return applyRuleList(stemmed, [
    ["at", "ate", null],
    ["bl", "ble", null],
    ["iz", "ize", null],
    ["*d", last, () => !["l", "s", "z"].includes(last)],
    ["", "e", (stem) => measure(stem) === 1 && endsCvc(stem)],
  ]);
}

function step1c(word: string): string {
  return applyRuleList(word, [["y", "i", (stem) => stem.length > 1 && isConsonant(stem, stem.length - 1)]]);
}

function step2(word: string): string {
  // nltk applies ALLI -> AL first and, when it fires, runs step 2 again on the result.
  if (word.endsWith("alli") && hasPositiveMeasure(replaceSuffix(word, "alli", ""))) {
    return step2(replaceSuffix(word, "alli", "al"));
  }
  const p = hasPositiveMeasure;
  return applyRuleList(word, [
    ["ational", "ate", p],
    ["tional", "tion", p],
    ["enci", "ence", p],
    ["anci", "ance", p],
    ["izer", "ize", p],
    ["bli", "ble", p],
    ["alli", "al", p],
    ["entli", "ent", p],
    ["eli", "e", p],
    ["ousli", "ous", p],
    ["ization", "ize", p],
    ["ation", "ate", p],
    ["ator", "ate", p],
    ["alism", "al", p],
    ["iveness", "ive", p],
    ["fulness", "ful", p],
    ["ousness", "ous", p],
    ["aliti", "al", p],
    ["iviti", "ive", p],
    ["biliti", "ble", p],
    ["fulli", "ful", p],
    // nltk keeps the 'l' of 'logi' with the stem, so the measure is taken of word[:-3].
    ["logi", "log", () => hasPositiveMeasure(word.slice(0, -3))],
  ]);
}

function step3(word: string): string {
  const p = hasPositiveMeasure;
  return applyRuleList(word, [
    ["icate", "ic", p],
    ["ative", "", p],
    ["alize", "al", p],
    ["iciti", "ic", p],
    ["ical", "ic", p],
    ["ful", "", p],
    ["ness", "", p],
  ]);
}

function step4(word: string): string {
  const gt1 = (stem: string) => measure(stem) > 1;
  return applyRuleList(word, [
    ["al", "", gt1],
    ["ance", "", gt1],
    ["ence", "", gt1],
    ["er", "", gt1],
    ["ic", "", gt1],
    ["able", "", gt1],
    ["ible", "", gt1],
    ["ant", "", gt1],
    ["ement", "", gt1],
    ["ment", "", gt1],
    ["ent", "", gt1],
    ["ion", "", (stem) => measure(stem) > 1 && ["s", "t"].includes(stem[stem.length - 1])],
    ["ou", "", gt1],
    ["ism", "", gt1],
    ["ate", "", gt1],
    ["iti", "", gt1],
    ["ous", "", gt1],
    ["ive", "", gt1],
    ["ize", "", gt1],
  ]);
}

function step5a(word: string): string {
  if (word.endsWith("e")) {
    const stem = replaceSuffix(word, "e", "");
    if (measure(stem) > 1) return stem;
    if (measure(stem) === 1 && !endsCvc(stem)) return stem;
  }
  return word;
}

function step5b(word: string): string {
  return applyRuleList(word, [["ll", "l", () => measure(word.slice(0, -1)) > 1]]);
}

/**
 * Python indexes strings by code point, JavaScript by UTF-16 unit. The rules only look at ASCII letters,
 * so each astral character is swapped for a private-use placeholder (one unit, a consonant like it is in
 * Python) for the duration of stemming and swapped back after; lengths then match Python's.
 */
function withCodePointLengths(word: string, stem: (w: string) => string): string {
  if (!/[\u{10000}-\u{10ffff}]/u.test(word)) return stem(word);
  const toPlaceholder = new Map<string, string>();
  const fromPlaceholder = new Map<string, string>();
  let next = 0xe000;
  let narrowed = "";
  for (const char of word) {
    if (char.length === 1) {
      narrowed += char;
      continue;
    }
    let placeholder = toPlaceholder.get(char);
    if (placeholder === undefined) {
      while (word.includes(String.fromCharCode(next))) next++;
      placeholder = String.fromCharCode(next++);
      toPlaceholder.set(char, placeholder);
      fromPlaceholder.set(placeholder, char);
    }
    narrowed += placeholder;
  }
  return [...stem(narrowed)].map((char) => fromPlaceholder.get(char) ?? char).join("");
}

/** nltk `PorterStemmer().stem(word)` (NLTK_EXTENSIONS, to_lowercase=True). */
export function porterStem(word: string): string {
  return withCodePointLengths(word, (original) => {
    const lowered = original.toLowerCase();
    // nltk looks the original word up in the pool but returns the entry of the lower-cased one.
    if (POOL.has(original)) return POOL.get(lowered)!;
    if (original.length <= 2) return lowered;
    let stem = lowered;
    for (const step of [step1a, step1b, step1c, step2, step3, step4, step5a, step5b]) stem = step(stem);
    return stem;
  });
}
