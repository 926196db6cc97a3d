/**
 * `deno task metrics --refs FILE --hyps FILE [--tokenize whitespace|word] [--json]`: corpus BLEU
 * (sacreBLEU 13a), sentence BLEU, METEOR (nltk) and meteor_ru of hypotheses against references, one
 * sentence per line. `--tokenize` chooses METEOR's word splitting; BLEU always uses sacreBLEU's 13a.
 */
import {
  bleuSignature,
  corpusBleu,
  corpusMeteor,
  corpusMeteorRu,
  type MeteorTokenization,
  sentenceBleu,
} from "../metrics/mod.ts";

const USAGE = `usage: deno task metrics --refs FILE --hyps FILE [--tokenize whitespace|word] [--json]
  --refs FILE      references, one sentence per line
  --hyps FILE      hypotheses, one sentence per line (same number of lines)
  --tokenize T     METEOR word splitting: whitespace (default, as nltk examples) or word
  --json           print one JSON object last: bleu, bleu_signature, sentence_bleu, meteor,
                   meteor_per_sentence, meteor_ru`;

interface Options {
  refs: string;
  hyps: string;
  tokenize: MeteorTokenization;
  json: boolean;
}

function parseArgs(args: string[]): Options | "help" {
  const options: Partial<Options> = { tokenize: "whitespace", json: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      const next = args[++i];
      if (next === undefined) throw new TypeError(`${arg} needs a value\n${USAGE}`);
      return next;
    };
    if (arg === "--help" || arg === "-h") return "help";
    else if (arg === "--refs") options.refs = value();
    else if (arg === "--hyps") options.hyps = value();
    else if (arg === "--json") options.json = true;
    else if (arg === "--tokenize") {
      const tokenize = value();
      if (tokenize !== "whitespace" && tokenize !== "word") {
        throw new TypeError(`--tokenize must be whitespace or word, got "${tokenize}"`);
      }
      options.tokenize = tokenize;
    } else throw new TypeError(`unknown option "${arg}"\n${USAGE}`);
  }
  if (options.refs === undefined || options.hyps === undefined) {
    throw new TypeError(`both --refs and --hyps are required\n${USAGE}`);
  }
  return options as Options;
}

/** The lines of a text file: a final newline does not add an empty sentence; CRLF is accepted. */
async function readLines(path: string, what: string): Promise<string[]> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await Deno.readFile(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new Error(`${what} file ${path} does not exist`);
    if (err instanceof TypeError) throw new Error(`${what} file ${path} is not valid UTF-8`);
    throw err;
  }
  if (text === "") throw new Error(`${what} file ${path} is empty: give one sentence per line`);
  const lines = text.split(/\r?\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

export async function run(args: string[]): Promise<number> {
  const options = parseArgs(args);
  if (options === "help") {
    console.log(USAGE);
    return 0;
  }
  const refs = await readLines(options.refs, "references");
  const hyps = await readLines(options.hyps, "hypotheses");
  if (refs.length !== hyps.length) {
    throw new Error(
      `${options.hyps} has ${hyps.length} lines but ${options.refs} has ${refs.length}: ` +
        `give one hypothesis per reference line`,
    );
  }
  const bleu = corpusBleu(hyps, [refs]);
  const signature = bleuSignature(1);
  const sentence = hyps.map((hyp, i) => sentenceBleu(hyp, [refs[i]]).score);
  const perRefs = refs.map((ref) => [ref]);
  const meteor = corpusMeteor(hyps, perRefs, { tokenize: options.tokenize });
  const meteorRu = corpusMeteorRu(hyps, perRefs, { tokenize: options.tokenize });
  const precisions = bleu.precisions.map((p) => p.toFixed(1)).join("/");
  console.log(`sentences      ${hyps.length}`);
  console.log(
    `BLEU           ${bleu.score.toFixed(2)}  ${precisions} (BP = ${bleu.bp.toFixed(3)}, ` +
      `hyp_len = ${bleu.sysLen}, ref_len = ${bleu.refLen})`,
  );
  console.log(`               ${signature}`);
  console.log(
    `METEOR         ${meteor.mean.toFixed(4)}  (nltk, ${options.tokenize} tokens, mean of sentences)`,
  );
  console.log(
    `METEOR (ru)    ${meteorRu.mean.toFixed(4)}  (Snowball Russian stems, no WordNet for Cyrillic)`,
  );
  if (options.json) {
    console.log(JSON.stringify({
      bleu: bleu.score,
      bleu_signature: signature,
      sentence_bleu: sentence,
      meteor: meteor.mean,
      meteor_per_sentence: meteor.perSentence,
      meteor_ru: meteorRu.mean,
    }));
  }
  return 0;
}
