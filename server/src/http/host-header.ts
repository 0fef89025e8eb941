import { badInput, forbidden } from '../errors/index.js';

/** Hosts already judged, so a request pays the parse once per distinct Host, not every time. */
const KNOWN_MAX = 256;
/** Names of this machine: what a browser on it sends for a page it loaded from here. */
const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

/**
 * Checks the `Host` header before any route runs (docs/architecture.md, "HTTP and GraphQL").
 *
 * - **Malformed** (`a b`, `x:99999`, `[::1`, a path or user part): 400. yoga builds each request's
 *   URL from Host, and on an invalid one its server adapter answered 500 with the error's stack
 *   as the body, past the error table, in production too.
 * - **While auth is off** every caller is the admin `demo`, so the gateway listens on 127.0.0.1.
 *   A listening address does not stop DNS rebinding: a web page whose name is re-pointed to
 *   127.0.0.1 is same-origin with the gateway in the developer's own browser, and could read
 *   and change everything. Such a request names the attacker's host, so only loopback names and
 *   PUBLIC_URL's host are served then (403 otherwise). With auth on, a caller needs a token.
 *
 * A request without Host (HTTP/1.0; Node refuses HTTP/1.1 without one) passes: yoga uses
 * `localhost`. The parse is the WHATWG URL parser's, linear in the header's length.
 */
export function createHostCheck(o: { authDisabled: boolean; publicUrl: string }) {
  const allowed = o.authDisabled ? new Set([...LOOPBACK, new URL(o.publicUrl).hostname]) : undefined;
  const known = new Set<string>();

  return (host: string | undefined): void => {
    if (host === undefined || known.has(host)) return;
    const hostname = hostnameOf(host);
    if (hostname === undefined) {
      throw badInput(`Malformed Host header: ${JSON.stringify(host.slice(0, 64))}`);
    }
    // `localhost.` is `localhost` (a fully qualified name); the URL parser keeps the dot.
    if (allowed && !allowed.has(hostname.endsWith('.') ? hostname.slice(0, -1) : hostname)) {
      throw forbidden(
        `Auth is off (every caller is the admin): only requests for localhost or PUBLIC_URL's host are served, not ${JSON.stringify(hostname.slice(0, 64))}`,
      );
    }
    if (known.size < KNOWN_MAX) known.add(host);
  };
}

/** The host name of a Host header (IPv6 in brackets), or undefined when it is not one. */
export function hostnameOf(host: string): string | undefined {
  // Host is an authority: a name and a port, nothing the URL parser would read as more.
  if (/[/?#\\@\s]/.test(host)) return undefined;
  let u: URL;
  try {
    u = new URL(`http://${host}`);
  } catch {
    return undefined;
  }
  return u.pathname === '/' ? u.hostname : undefined;
}
