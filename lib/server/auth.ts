/**
 * The bearer-token gate. With a token configured (required off loopback), every page and API call must carry
 * it: `Authorization: Bearer <token>` for API clients, or — for a browser — `?token=<token>` once, which sets an
 * HttpOnly cookie and redirects to the same URL without the token (so it does not stay in history or logs).
 */
import type { MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";

export const TOKEN_COOKIE = "ostrota_token";

/** Compares in time independent of where the strings differ. */
function sameSecret(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}

export function requireToken(token: string): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header("authorization");
    const bearer = header?.match(/^Bearer\s+(.+)$/i)?.[1];
    if (bearer !== undefined && sameSecret(bearer, token)) return await next();
    const cookie = getCookie(c, TOKEN_COOKIE);
    if (cookie !== undefined && sameSecret(cookie, token)) return await next();
    const url = new URL(c.req.url);
    const query = url.searchParams.get("token");
    if (query !== null && sameSecret(query, token)) {
      setCookie(c, TOKEN_COOKIE, token, { httpOnly: true, sameSite: "Strict", path: "/" });
      if (c.req.method === "GET" && !c.req.path.startsWith("/api/")) {
        url.searchParams.delete("token");
        return c.redirect(url.pathname + url.search, 303);
      }
      return await next();
    }
    c.header("WWW-Authenticate", 'Bearer realm="ostrota"');
    return c.json({
      error: "this lab needs its token: send Authorization: Bearer <OSTROTA_TOKEN>, or open the page once " +
        "with ?token=<OSTROTA_TOKEN>",
    }, 401);
  };
}
