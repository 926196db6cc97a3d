/**
 * `deno task generate --model DIR [--adapter DIR] (--prompt TEXT | --chat TEXT [--system TEXT]) [...]`: streams
 * generated text to stdout as it is produced (never half a UTF-8 character). `--chat` renders the folder's chat
 * template with a generation prompt; `--temperature 0` is greedy; with `--json` the last line is one JSON object
 * `{"prompt_ids", "ids", "text", "tokens_per_second"}`.
 */
import { initRuntime } from "../../compute/runtime.ts";
import { generate } from "../generate/generate.ts";
import { loadAdapter } from "../lora/peft.ts";
import { loadModel } from "../models/mod.ts";
import { createStreamDecoder, loadTokenizer } from "../tokenizer/mod.ts";
import { parseArgs, usage } from "./args.ts";
import { resolveModel } from "./resolve.ts";

const SPECS = {
  model: { kind: "string", help: "model folder, or tiny-qwen2 / tiny-gpt2", required: true },
  adapter: { kind: "string", help: "PEFT LoRA adapter folder to apply" },
  prompt: { kind: "string", help: "raw prompt text" },
  chat: { kind: "string", help: "a user message, rendered with the model's chat template" },
  system: { kind: "string", help: "system message for --chat" },
  "max-new-tokens": { kind: "int", help: "tokens to generate at most (64)" },
  temperature: { kind: "number", help: "0 = greedy (default 0)" },
  "top-p": { kind: "number", help: "nucleus sampling mass (1 = off)" },
  "top-k": { kind: "int", help: "sample among the k most likely (0 = off)" },
  "repetition-penalty": { kind: "number", help: "> 1 discourages repeats (1 = off)" },
  seed: { kind: "int", help: "sampling seed (0)" },
  nf4: { kind: "boolean", help: "load the linear weights in NF4" },
  json: { kind: "boolean", help: "print one JSON object as the last line" },
} as const;

export async function run(args: string[]): Promise<number> {
  const o = parseArgs("generate", SPECS, args);
  if (o === "help") {
    console.log(usage("generate", SPECS));
    return 0;
  }
  if ((o.prompt === undefined) === (o.chat === undefined)) {
    throw new TypeError("give exactly one of --prompt or --chat");
  }
  if (o.system !== undefined && o.chat === undefined) throw new TypeError("--system goes with --chat");
  const dir = await resolveModel(o.model!);
  const runtime = await initRuntime();
  const tokenizer = await loadTokenizer(dir);
  const text = o.chat !== undefined
    ? tokenizer.applyChatTemplate(
      [...(o.system !== undefined ? [{ role: "system", content: o.system }] : []), {
        role: "user",
        content: o.chat,
      }],
      { addGenerationPrompt: true },
    )
    : o.prompt!;
  const promptIds = tokenizer.encode(text);
  const model = await loadModel(
    dir,
    o.nf4 ? { quantize: "nf4", doubleQuant: true } : { dtype: runtime.gpu.hasF16 ? "f16" : "f32" },
  );
  try {
    if (o.adapter) await loadAdapter(model, o.adapter);
    const decoder = createStreamDecoder(tokenizer, { skipSpecialTokens: true });
    const encoder = new TextEncoder();
    let output = "";
    const write = (piece: string) => {
      output += piece;
      if (piece) Deno.stdout.writeSync(encoder.encode(piece));
    };
    const started = performance.now();
    const { ids } = await generate(
      model,
      promptIds,
      {
        maxNewTokens: o["max-new-tokens"] ?? 64,
        temperature: o.temperature ?? 0,
        topP: o["top-p"] ?? 1,
        topK: o["top-k"] ?? 0,
        repetitionPenalty: o["repetition-penalty"] ?? 1,
        seed: o.seed ?? 0,
        stopIds: tokenizer.eosIds,
      },
      (id) => write(decoder.push(id)),
    );
    write(decoder.flush());
    const seconds = (performance.now() - started) / 1000;
    Deno.stdout.writeSync(encoder.encode("\n"));
    if (o.json) {
      console.log(
        JSON.stringify({ prompt_ids: promptIds, ids, text: output, tokens_per_second: ids.length / seconds }),
      );
    }
    return 0;
  } finally {
    model.dispose();
  }
}
