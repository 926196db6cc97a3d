import assert from "node:assert/strict";
import { JobKinds } from "../../lib/jobs/mod.ts";
import { startTestLab } from "./_harness.ts";

const TOKEN = "test-token-0123456789abcdef";

Deno.test("with a token, every page and API call needs it: bearer header, or ?token= once then the cookie", async () => {
  const lab = await startTestLab({ kinds: new JobKinds(), token: TOKEN });
  try {
    for (const path of ["/", "/system", "/runs", "/api/system", "/api/runs", "/static/lab.css", "/nowhere"]) {
      const response = await fetch(`${lab.url}${path}`);
      assert.equal(response.status, 401, path);
      assert.match((await response.json()).error, /OSTROTA_TOKEN/);
    }
    const post = await fetch(`${lab.url}/api/runs`, { method: "POST", body: "{}" });
    assert.equal(post.status, 401);
    await post.body?.cancel();
    const wrong = await fetch(`${lab.url}/api/system`, { headers: { authorization: `Bearer ${TOKEN}x` } });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();

    const bearer = await fetch(`${lab.url}/api/system`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(bearer.status, 200);
    await bearer.body?.cancel();

    const browser = await fetch(`${lab.url}/system?token=${TOKEN}`, { redirect: "manual" });
    assert.equal(browser.status, 303);
    assert.equal(browser.headers.get("location"), "/system", "the token leaves the URL");
    const cookie = browser.headers.get("set-cookie") ?? "";
    assert.match(cookie, /ostrota_token=/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    await browser.body?.cancel();
    const withCookie = await fetch(`${lab.url}/system`, { headers: { cookie: cookie.split(";")[0] } });
    assert.equal(withCookie.status, 200);
    assert.match(await withCookie.text(), /WebGPU adapter/);
  } finally {
    await lab.close();
  }
});

Deno.test("without a token (loopback), pages and the API answer", async () => {
  const lab = await startTestLab({ kinds: new JobKinds() });
  try {
    const response = await fetch(`${lab.url}/api/system`);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  } finally {
    await lab.close();
  }
});

Deno.test("cross-origin writes and non-loopback Host names are refused", async () => {
  const kinds = new JobKinds();
  kinds.register("noop", () => Promise.resolve());
  const lab = await startTestLab({ kinds });
  try {
    const body = JSON.stringify({ kind: "noop", config: {} });
    const foreign = await fetch(`${lab.url}/api/runs`, {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "text/plain" },
      body,
    });
    assert.equal(foreign.status, 403);
    assert.match((await foreign.json()).error, /cross-origin POST from https:\/\/evil.example refused/);
    const own = await fetch(`${lab.url}/api/runs`, { method: "POST", headers: { origin: lab.url }, body });
    assert.equal(own.status, 201);
    await own.body?.cancel();
    await lab.queue.idle();
    // DNS rebinding: a page on rebind.example whose name now resolves to 127.0.0.1.
    // fetch() will not send a Host of our choosing, so this request is written by hand.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(lab.url).port) });
    await conn.write(
      new TextEncoder().encode(
        "GET /api/system HTTP/1.1\r\nHost: rebind.example\r\nConnection: close\r\n\r\n",
      ),
    );
    const answer = await new Response(conn.readable).text();
    assert.match(answer, /^HTTP\/1\.1 403/);
    assert.match(answer, /not a loopback name/);
    assert.equal(lab.store.listRuns().length, 1);
  } finally {
    await lab.close();
  }
});
