/** Training checkpoints are written atomically: a failure mid-write leaves the previous checkpoint intact. */
import { keep, tensor } from "../../../compute/tensor.ts";
import { listCheckpoints, loadTrainingState, saveTrainingState } from "../../../lib/train/state.ts";
import { gpuTest } from "../../compute/harness.ts";

gpuTest(
  "train state: a checkpoint that fails mid-write leaves the previous one intact and loadable",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "ostrota-state-" });
    const weights = keep(tensor(Float32Array.of(1, 2, 3), [3]));
    const codes = keep(tensor(Uint32Array.of(7, 8), [2], "u32"));
    const position = { step: 1, epoch: 0, batchIndex: 3, rngCounter: 9, losses: [2.5], configKey: "k" };
    try {
      await saveTrainingState(dir, position, new Map([["w", weights], ["q", codes]]));
      const broken = keep(tensor(Float32Array.of(4), [1]));
      broken.dispose(); // reading it fails half-way through the next checkpoint's tensors
      let message = "";
      try {
        await saveTrainingState(dir, { ...position, step: 2 }, new Map([["w", weights], ["x", broken]]));
      } catch (err) {
        message = (err as Error).message;
      }
      if (!message.includes("previous one is intact")) throw new Error(`unexpected: ${message}`);
      const names = (await listCheckpoints(dir)).map((p) => p.split("/").at(-1));
      if (names.join() !== "step-000001") throw new Error(`checkpoints left: ${names}`);
      for await (const e of Deno.readDir(dir)) {
        if (e.name.includes(".tmp")) {
          throw new Error(`temp left: ${e.name}`);
        }
      }
      weights.write(Float32Array.of(0, 0, 0));
      codes.write(Uint32Array.of(0, 0));
      const restored = await loadTrainingState(dir, new Map([["w", weights], ["q", codes]]));
      if (restored?.step !== 1 || restored.batchIndex !== 3) {
        throw new Error(
          `position ${JSON.stringify(restored)}`,
        );
      }
      if ((await weights.toArray()).join() !== "1,2,3" || (await codes.toArray()).join() !== "7,8") {
        throw new Error("restored tensors differ");
      }
    } finally {
      weights.dispose();
      codes.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
