/**
 * The generate / eval / train commands as a user runs them (spawned `deno run main.ts ...`) on the built-in tiny
 * models and the sample data, with a throwaway lab home: JSON output shapes, and clear errors for bad input.
 */
import assert, { equal as assertEquals, match as assertMatch } from "node:assert/strict";

const MAIN = new URL("../../../main.ts", import.meta.url).pathname;
const home = await Deno.makeTempDir({ prefix: "ostrota-cli-home-" });

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { OSTROTA_HOME: home, XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test({
  name: "cli: generate --chat streams text and ends with the JSON summary; eval scores the held-out split",
  sanitizeResources: false,
  fn: async () => {
    const gen = await cli(
      "generate",
      "--model",
      "tiny-qwen2",
      "--chat",
      "Привет!",
      "--max-new-tokens",
      "5",
      "--json",
    );
    assertEquals(gen.code, 0, gen.stderr);
    const last = JSON.parse(gen.stdout.trim().split("\n").at(-1)!);
    assertEquals(last.ids.length, 5);
    assert(last.prompt_ids.includes(151644), "the chat template's <|im_start|> is in the prompt");
    assert(last.tokens_per_second > 0);
    const ev = await cli(
      "eval",
      "--model",
      "tiny-gpt2",
      "--dataset",
      "sample",
      "--count",
      "3",
      "--max-new-tokens",
      "4",
      "--json",
    );
    assertEquals(ev.code, 0, ev.stderr);
    const result = JSON.parse(ev.stdout.trim().split("\n").at(-1)!);
    assertEquals(result.examples, 3);
    for (const key of ["bleu", "meteor", "meteor_ru", "mean_answer_words"]) {
      assert(Number.isFinite(result[key]), key);
    }
    assertEquals(result.outputs.length, 3);
  },
});

Deno.test({
  name: "cli: bad input gets a one-line error naming the problem, not a stack trace",
  sanitizeResources: false,
  fn: async () => {
    const cases: [string[], RegExp][] = [
      [
        ["generate", "--model", "/nonexistent/model", "--prompt", "x"],
        /--model \/nonexistent\/model: no such folder/,
      ],
      [["eval", "--model", MAIN, "--dataset", "sample"], /main\.ts: is a file, not a folder/],
      [
        ["generate", "--model", "tiny-gpt2", "--prompt", "x", "--chat", "y"],
        /exactly one of --prompt or --chat/,
      ],
      [
        ["generate", "--model", "tiny-gpt2", "--prompt", "x", "--max-new-tokens", "600"],
        /exceeds the model's 512 positions/,
      ],
      [[
        "train",
        "--recipe",
        "qlora",
        "--model",
        "tiny-qwen2",
        "--dataset",
        "sample",
        "--out",
        "/tmp/o",
        "--lr",
        "-1",
      ], /lr must be/],
      [
        ["train", "--recipe", "sgd", "--model", "tiny-qwen2", "--dataset", "sample", "--out", "/tmp/o"],
        /--recipe must be/,
      ],
      [["eval", "--model", "tiny-gpt2", "--dataset", "/nonexistent.jsonl"], /nonexistent\.jsonl/],
      [["eval", "--model", "tiny-gpt2", "--dataset", "sample", "--bogus"], /unknown option --bogus/],
    ];
    for (const [args, pattern] of cases) {
      const r = await cli(...args);
      assertEquals(r.code === 0, false, `${args.join(" ")} should fail`);
      assertMatch(r.stderr, pattern);
      assert(!r.stderr.includes("    at "), `stack trace for ${args.join(" ")}:\n${r.stderr}`);
    }
  },
});

addEventListener("unload", () => Deno.removeSync(home, { recursive: true }));
