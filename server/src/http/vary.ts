/**
 * The names of Vary headers, each once (any case; the first spelling kept), with `add` last: one
 * Vary for an answer whose headers come from the HTTP layer (Authorization, Origin) and from
 * what wrote the body (yoga's, a coding's Accept-Encoding).
 */
export function mergeVary(
  values: readonly (string | number | string[] | null | undefined)[],
  add: string,
): string {
  const names = new Map<string, string>();
  for (const v of [...values.flat(), add]) {
    if (v === null || v === undefined) continue;
    for (const name of String(v).split(',')) {
      const n = name.trim();
      if (n !== '' && !names.has(n.toLowerCase())) names.set(n.toLowerCase(), n);
    }
  }
  return [...names.values()].join(', ');
}
