import assert from "node:assert/strict";
import { isLoopback, parseServeOptions } from "../../../lib/server/options.ts";

const env = (values: Record<string, string>) => new Map(Object.entries(values));

Deno.test("serve defaults to 127.0.0.1:8000; flags override env", () => {
  const defaults = parseServeOptions([], env({ OSTROTA_HOME: "/tmp/lab" }));
  assert.deepEqual(defaults, { host: "127.0.0.1", port: 8000, token: null, home: "/tmp/lab" });
  const fromEnv = parseServeOptions([], env({ OSTROTA_PORT: "9000", OSTROTA_HOST: "localhost" }));
  assert.ok(fromEnv !== "help");
  assert.equal(fromEnv.port, 9000);
  assert.equal(fromEnv.host, "localhost");
  const flags = parseServeOptions(["--port", "0", "--host=::1"], env({ OSTROTA_PORT: "9000" }));
  assert.ok(flags !== "help");
  assert.equal(flags.port, 0);
  assert.equal(flags.host, "::1");
  assert.equal(parseServeOptions(["--help"], env({})), "help");
  assert.throws(() => parseServeOptions(["--port", "99999"], env({})), /--port must be a port number/);
  assert.throws(() => parseServeOptions(["--verbose"], env({})), /unknown option "--verbose"/);
});

Deno.test("a non-loopback host needs OSTROTA_TOKEN", () => {
  assert.throws(() => parseServeOptions(["--host", "0.0.0.0"], env({})), /set OSTROTA_TOKEN/);
  assert.throws(
    () => parseServeOptions(["--host", "0.0.0.0"], env({ OSTROTA_TOKEN: "short" })),
    /at least 16 characters/,
  );
  const ok = parseServeOptions(["--host", "0.0.0.0"], env({ OSTROTA_TOKEN: "0123456789abcdef" }));
  assert.ok(ok !== "help");
  assert.equal(ok.token, "0123456789abcdef");
  assert.ok(
    isLoopback("127.0.0.1") && isLoopback("127.1.2.3") && isLoopback("[::1]") && isLoopback("localhost"),
  );
  assert.ok(!isLoopback("0.0.0.0") && !isLoopback("::") && !isLoopback("192.168.1.5"));
});
