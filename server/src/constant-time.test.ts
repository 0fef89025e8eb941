import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = path.dirname(fileURLToPath(import.meta.url));

/** A name that holds a signature, MAC, digest or secret. */
const SECRETISH = /(sig|signature|mac|hmac|digest|secret|password)$/i;
/** `a === b` / `a !== b` between two names or member expressions (literals are not compared here). */
const COMPARISON =
  /([A-Za-z_$][\w$.]*(?:\[[^\]]*\])?)\s*(?:===|!==|==|!=)\s*([A-Za-z_$][\w$.]*(?:\[[^\]]*\])?)/g;
const HARMLESS = new Set(['null', 'undefined', 'true', 'false']);

/**
 * A static guard for the security review: signatures, MACs and secrets are compared with
 * crypto.timingSafeEqual, never with `===` (which returns at the first differing byte and so
 * tells an attacker, byte by byte, how much of a forgery is right).
 */
describe('constant-time comparisons', () => {
  it('no signature, MAC, digest or secret in server/src is compared with === or !==', () => {
    const files = (readdirSync(SRC, { recursive: true }) as string[]).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
    );
    expect(files.length).toBeGreaterThan(50);
    const offenders: string[] = [];
    for (const f of files) {
      readFileSync(path.join(SRC, f), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          for (const m of line.matchAll(COMPARISON)) {
            const [a, b] = [m[1]!, m[2]!];
            if (HARMLESS.has(a) || HARMLESS.has(b) || /\.length$|^typeof$/.test(a)) continue;
            const last = (s: string) => s.split('.').pop()!.replace(/\[.*$/, '');
            if (SECRETISH.test(last(a)) || SECRETISH.test(last(b)))
              offenders.push(`${f}:${i + 1}: ${line.trim()}`);
          }
        });
    }
    expect(offenders).toEqual([]);
  });

  it('the verifiers use timingSafeEqual', () => {
    for (const f of ['auth/proxy-token.ts', 'storage/local.ts']) {
      expect(readFileSync(path.join(SRC, f), 'utf8'), f).toMatch(/timingSafeEqual\(/);
    }
  });
});
