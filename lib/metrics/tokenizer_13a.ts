/**
 * sacreBLEU's default tokenizer, `13a` (a port of sacrebleu/tokenizers/tokenizer_13a.py and
 * tokenizer_re.py, sacreBLEU 2.x), which reproduces mteval-v13a.pl as used by WMT.
 */
import { pythonSplit } from "./python_text.ts";

/**
 * The four substitutions of sacreBLEU's TokenizerRegexp, in order. The first class is sacreBLEU's
 * `[\{-\~\[-\` -\&\(-\+\:-\@\/]` spelled with code points (the `u` flag rejects its identity escapes):
 * `{|}~`, `[\]^_\``, space to `&`, `(` to `+`, `:` to `@`, and `/`. Apostrophe, comma, hyphen and period are
 * left out on purpose: periods and commas get the digit-aware rules below, hyphens only split after digits.
 */
const REGEXP_RULES: ReadonlyArray<readonly [RegExp, string]> = [
  [/([\x7b-\x7e\x5b-\x60\x20-\x26\x28-\x2b\x3a-\x40\x2f])/gu, " $1 "],
  // a period or comma is split off unless preceded by a digit
  [/([^0-9])([.,])/gu, "$1 $2 "],
  // a period or comma is split off unless followed by a digit
  [/([.,])([^0-9])/gu, " $1 $2"],
  // a dash is split off when preceded by a digit
  [/([0-9])(-)/gu, "$1 $2 "],
];

/** sacreBLEU's `TokenizerRegexp.__call__`: the substitutions, then single spaces between tokens. */
export function tokenizeRegexp(line: string): string {
  let text = line;
  for (const [pattern, replacement] of REGEXP_RULES) text = text.replace(pattern, replacement);
  return pythonSplit(text).join(" ");
}

/**
 * sacreBLEU's `Tokenizer13a.__call__`: drops `<skipped>`, joins words hyphenated across a line break,
 * unescapes `&quot;`, `&amp;`, `&lt;`, `&gt;` (in that order, as sacreBLEU does, so `&amp;lt;` becomes `<`),
 * then applies {@link tokenizeRegexp}. Returns the tokens joined by single spaces, like sacreBLEU.
 */
export function tokenize13a(line: string): string {
  const text = line
    .replaceAll("<skipped>", "")
    .replaceAll("-\n", "")
    .replaceAll("\n", " ")
    .replaceAll("&quot;", '"')
    .replaceAll("&amp;", "&")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">");
  return tokenizeRegexp(` ${text} `);
}
