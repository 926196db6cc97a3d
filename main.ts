/**
 * Ostrota entry point. `deno task start` runs `serve` (the lab); the other sub-commands are the CLI.
 * Each sub-command lives in lib/cli/<name>.ts and exports `run(args: string[]): Promise<number>`
 * returning the process exit code.
 */
const commands: Record<string, () => Promise<{ run(args: string[]): Promise<number> }>> = {
  serve: () => import("./lib/cli/serve.ts"),
  generate: () => import("./lib/cli/generate.ts"),
  metrics: () => import("./lib/cli/metrics.ts"),
  eval: () => import("./lib/cli/eval.ts"),
  train: () => import("./lib/cli/train.ts"),
  demo: () => import("./lib/cli/demo.ts"),
};

const usage = `usage: deno task <command> [options]
commands:
  start     (serve) the lab on http://127.0.0.1:8000  [--host H] [--port P]
  generate  text from a model folder                   --model DIR (--prompt T | --chat T) ...
  metrics   BLEU and METEOR of hypotheses vs references --refs FILE --hyps FILE
  eval      evaluate a model on a dataset's eval split --model DIR --dataset PATH
  train     fine-tune (QLoRA or full)                  --recipe qlora|full --model DIR --dataset PATH --out DIR
  demo      both recipes on the tiny models + sample data, evaluated before/after, with the comparison table
Run a command with --help for its options.`;

if (import.meta.main) {
  const [name = "serve", ...rest] = Deno.args;
  if (name === "--help" || name === "-h" || name === "help") {
    console.log(usage);
    Deno.exit(0);
  }
  const load = commands[name];
  if (!load) {
    console.error(`unknown command "${name}"\n\n${usage}`);
    Deno.exit(2);
  }
  try {
    const code = await (await load()).run(rest);
    Deno.exit(code);
  } catch (err) {
    // A CLI error is for a person: the message names the problem; the stack only helps when debugging.
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    if (Deno.env.get("OSTROTA_DEBUG")) console.error(err);
    Deno.exit(1);
  }
}
