import assert from "node:assert/strict";
import { getGpu } from "../../compute/gpu.ts";
import { JobKinds } from "../../lib/jobs/mod.ts";
import { countingKind, startTestLab } from "./_harness.ts";

function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll(
    '"',
    "&quot;",
  );
}

Deno.test("the System page shows the adapter in use, its limits, features and live GPU memory", async () => {
  const adapter = (await getGpu()).adapter;
  const lab = await startTestLab({ kinds: new JobKinds() });
  try {
    const response = await fetch(`${lab.url}/system`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /text\/html/);
    const html = await response.text();
    assert.ok(html.includes(`<dd data-field="description">${escapeHtml(adapter.description)}</dd>`));
    assert.ok(html.includes(adapter.isFallback ? "CPU fallback" : "hardware GPU"));
    assert.ok(html.includes("maxStorageBufferBindingSize"));
    for (const feature of adapter.features) assert.ok(html.includes(`<li>${feature}</li>`), feature);
    assert.match(
      html,
      /<div data-island="GpuMemory"><script type="application\/json">\{"initial":\{"liveBytes":/,
    );
    assert.match(html, /<a href="\/system" aria-current="page">System<\/a>/);
    assert.match(html, /<a href="\/runs">Runs<\/a>/);

    const landing = await (await fetch(`${lab.url}/`)).text();
    assert.ok(landing.includes(escapeHtml(adapter.description)), "the landing page shows the adapter too");

    // The island bundle the layout names is served, and is JavaScript.
    const src = html.match(/<script type="module" src="([^"]+)"/)![1];
    const bundle = await fetch(`${lab.url}${src}`);
    assert.equal(bundle.status, 200);
    assert.match(bundle.headers.get("cache-control") ?? "", /immutable/);
    assert.match(await bundle.text(), /data-island/);
    const css = await fetch(`${lab.url}/static/uplot.min.css`);
    assert.equal(css.status, 200);
    await css.body?.cancel();
  } finally {
    await lab.close();
  }
});

Deno.test("the Runs list and the Run page render a run with its metrics, samples and log", async () => {
  const kinds = new JobKinds();
  countingKind(kinds, "count");
  const lab = await startTestLab({ kinds });
  try {
    const run = lab.queue.submit("count", { steps: 3 }, "tiny </script><b>run");
    await lab.queue.idle();
    const list = await (await fetch(`${lab.url}/runs`)).text();
    assert.ok(list.includes(`<a href="/runs/${run.id}">tiny &lt;/script>&lt;b>run</a>`));
    assert.ok(list.includes("completed"));
    const page = await (await fetch(`${lab.url}/runs/${run.id}`)).text();
    assert.ok(page.includes(`data-island="RunView"`));
    assert.ok(page.includes("step 3"), "log tail");
    assert.ok(page.includes("Ответ!"), "samples");
    assert.ok(!page.includes("</script><b>"), "a name cannot end the props script early");
    const props = JSON.parse(
      page.match(/data-island="RunView"><script type="application\/json">(.*?)<\/script>/)![1],
    );
    assert.equal(props.metrics.length, 3);
    assert.equal(props.afterId, lab.store.lastEventId(run.id));
    const missing = await fetch(`${lab.url}/runs/12345`);
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /run 12345 does not exist/);
  } finally {
    await lab.close();
  }
});
