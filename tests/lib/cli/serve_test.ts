import assert from "node:assert/strict";
import * as path from "node:path";

const MAIN = path.resolve(import.meta.dirname!, "../../../main.ts");

function serve(args: string[], env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "serve", ...args],
    env: { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("serve without a WebGPU adapter prints what to install and exits 1, without a stack trace", async () => {
  const home = await Deno.makeTempDir({ prefix: "ostrota-serve-" });
  // DirectX 12 does not exist on Linux, so Deno's WebGPU finds no adapter at all.
  const output = await serve(["--port", "0"], { OSTROTA_HOME: home, DENO_WEBGPU_BACKEND: "dx12" }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 1, stderr);
  assert.match(stderr, /apt-get install -y mesa-vulkan-drivers/);
  assert.doesNotMatch(stderr, /^\s+at /m);
});

Deno.test("serve refuses a non-loopback host without OSTROTA_TOKEN", async () => {
  const home = await Deno.makeTempDir({ prefix: "ostrota-serve-" });
  const output = await serve(["--host", "0.0.0.0", "--port", "0"], { OSTROTA_HOME: home }).output();
  assert.equal(output.code, 1);
  assert.match(new TextDecoder().decode(output.stderr), /set OSTROTA_TOKEN/);
});

Deno.test("serve starts on a free port, answers, and stops cleanly on SIGTERM", async () => {
  const home = await Deno.makeTempDir({ prefix: "ostrota-serve-" });
  const child = serve(["--port", "0"], { OSTROTA_HOME: home });
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/http:\/\/127\.0\.0\.1:\d+\//.test(text)) {
    const { done, value } = await lines.read();
    if (done) break;
    text += value;
  }
  const url = text.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];
  const system = await fetch(`${url}api/system`);
  assert.equal(system.status, 200);
  assert.equal(typeof (await system.json()).adapter.description, "string");
  child.kill("SIGTERM");
  const [status] = await Promise.all([
    child.status,
    (async () => {
      while (!(await lines.read()).done);
    })(),
    child.stderr.cancel(),
  ]);
  assert.equal(status.code, 0);
  assert.ok((await Deno.stat(path.join(home, "runs.db"))).isFile);
});

Deno.test("SIGTERM stops serve even while a browser holds a run's event stream open", async () => {
  const home = await Deno.makeTempDir({ prefix: "ostrota-serve-" });
  const { RunStore } = await import("../../../lib/store/mod.ts");
  const store = new RunStore(path.join(home, "runs.db"));
  const run = store.createRun({ kind: "gone", name: "old", config: {} });
  store.close();
  const child = serve(["--port", "0"], { OSTROTA_HOME: home });
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/http:\/\/127\.0\.0\.1:\d+\//.test(text)) {
    const { done, value } = await lines.read();
    if (done) break;
    text += value;
  }
  const url = text.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];
  const events = await fetch(`${url}api/runs/${run.id}/events`);
  const reader = events.body!.getReader();
  await reader.read();
  child.kill("SIGTERM");
  const drain = async () => {
    while (!(await reader.read()).done);
  };
  const [status] = await Promise.all([
    child.status,
    drain(),
    (async () => {
      while (!(await lines.read()).done);
    })(),
    child.stderr.cancel(),
  ]);
  assert.equal(status.code, 0, "a graceful stop, not the second-signal exit");
});
