/**
 * Prepares the inputs make_model_goldens.py needs that are not in git: the Qwen and GPT-2 tokenizer files
 * in Hugging Face layout (from the npm dependencies).
 *
 * Usage: deno run -A tests/goldens/prepare_inputs.ts <out_dir>
 * Writes <out_dir>/qwen/{tokenizer.json,tokenizer_config.json} and
 * <out_dir>/gpt2/{vocab.json,merges.txt,tokenizer_config.json}.
 */
import { writeGpt2TokenizerFiles, writeQwenTokenizerFiles } from "../../lib/tokenizer/files.ts";

const outDir = Deno.args[0];
if (!outDir) {
  throw new TypeError("prepare_inputs.ts: missing output folder; usage: prepare_inputs.ts <out_dir>");
}
await writeQwenTokenizerFiles(`${outDir}/qwen`);
await writeGpt2TokenizerFiles(`${outDir}/gpt2`);

let totalBytes = 0;
for (const sub of ["qwen", "gpt2"]) {
  for await (const entry of Deno.readDir(`${outDir}/${sub}`)) {
    const size = (await Deno.stat(`${outDir}/${sub}/${entry.name}`)).size;
    totalBytes += size;
    console.log(`${sub}/${entry.name}: ${size} bytes`);
  }
}
console.log(`prepare_inputs: ${totalBytes} bytes in ${outDir}`);
