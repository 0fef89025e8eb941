/**
 * A strict parser for the small YAML subset our deployment files use: block mappings, block
 * sequences (`- ` items, which may open a mapping), plain and quoted scalars, `|`/`|-` literal
 * blocks and comments. Everything else (flow collections, anchors, tags, tabs, duplicate keys,
 * `key: value` hidden in a plain scalar) is an error naming the line, so a file that parses here
 * means what it looks like. Scalars stay strings.
 */
export type YamlValue = string | YamlValue[] | { [key: string]: YamlValue };

export class YamlSubsetError extends Error {
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
  }
}

interface Line {
  indent: number;
  text: string;
  n: number;
}

/** The line without its comment (a `#` at the start or after a space, outside quotes). */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || line[i - 1] === ' ')) {
      return line.slice(0, i);
    }
  }
  return line;
}

export function parseYamlSubset(src: string): YamlValue {
  const raw = src.replace(/\r\n/g, '\n').split('\n');
  let i = 0;

  function peek(): Line | null {
    while (i < raw.length) {
      const line = raw[i]!;
      const indent = line.length - line.replace(/^ +/, '').length;
      if (/^ *\t/.test(line)) throw new YamlSubsetError(i + 1, 'tabs are not allowed for indentation');
      const text = stripComment(line).trimEnd();
      if (text.trim() === '') {
        i++;
        continue;
      }
      return { indent, text: text.slice(indent), n: i + 1 };
    }
    return null;
  }

  function scalar(v: string, n: number): string {
    if (v.startsWith('"')) {
      try {
        const s = JSON.parse(v) as unknown;
        if (typeof s === 'string') return s;
      } catch {
        // reported below
      }
      throw new YamlSubsetError(n, `bad double-quoted string ${v}`);
    }
    if (v.startsWith("'")) {
      if (!/^'(?:[^']|'')*'$/.test(v)) throw new YamlSubsetError(n, `bad single-quoted string ${v}`);
      return v.slice(1, -1).replace(/''/g, "'");
    }
    if (/^[[\]{}&*!%@`|>,?]/.test(v)) throw new YamlSubsetError(n, `unsupported YAML syntax: ${v}`);
    if (v.includes(': ') || v.endsWith(':')) throw new YamlSubsetError(n, `ambiguous plain scalar: ${v}`);
    return v;
  }

  function literal(parentIndent: number, keep: boolean): string {
    const lines: string[] = [];
    let blockIndent = -1;
    while (i < raw.length) {
      const line = raw[i]!;
      if (line.trim() === '') {
        lines.push('');
        i++;
        continue;
      }
      const indent = line.length - line.replace(/^ +/, '').length;
      if (indent <= parentIndent) break;
      if (blockIndent < 0) blockIndent = indent;
      if (indent < blockIndent)
        throw new YamlSubsetError(i + 1, 'literal block lines must keep their indentation');
      lines.push(line.slice(blockIndent));
      i++;
    }
    while (lines.length > 0 && lines.at(-1) === '') lines.pop();
    return lines.join('\n') + (keep ? '\n' : '');
  }

  function block(minIndent: number, n: number): YamlValue {
    const l = peek();
    if (!l || l.indent < minIndent) throw new YamlSubsetError(n, 'expected an indented block');
    return l.text === '-' || l.text.startsWith('- ') ? sequence(l.indent) : mapping(l.indent);
  }

  function sequence(indent: number): YamlValue[] {
    const out: YamlValue[] = [];
    for (let l = peek(); l && l.indent >= indent; l = peek()) {
      if (l.indent > indent) throw new YamlSubsetError(l.n, 'unexpected indentation');
      if (!(l.text === '-' || l.text.startsWith('- '))) break;
      const rest = l.text.slice(1).trimStart();
      if (rest === '') {
        i++;
        out.push(block(indent + 1, l.n));
      } else if (/^[A-Za-z_][\w.-]*:( |$)/.test(rest)) {
        // `- key: value` opens a mapping whose keys line up with `key`.
        const col = l.indent + (l.text.length - rest.length);
        raw[i] = ' '.repeat(col) + rest;
        out.push(mapping(col));
      } else {
        i++;
        out.push(scalar(rest, l.n));
      }
    }
    return out;
  }

  function mapping(indent: number): { [key: string]: YamlValue } {
    const out: { [key: string]: YamlValue } = {};
    for (let l = peek(); l && l.indent >= indent; l = peek()) {
      if (l.indent > indent) throw new YamlSubsetError(l.n, 'unexpected indentation');
      const m = /^([A-Za-z_][\w.-]*):(?: +(.*))?$/.exec(l.text);
      if (!m) throw new YamlSubsetError(l.n, `expected "key: value", got ${l.text}`);
      const key = m[1]!;
      if (Object.hasOwn(out, key)) throw new YamlSubsetError(l.n, `duplicate key ${key}`);
      i++;
      const v = m[2];
      if (v === undefined) out[key] = block(indent + 1, l.n);
      else if (v === '|' || v === '|-') out[key] = literal(indent, v === '|');
      else out[key] = scalar(v, l.n);
    }
    return out;
  }

  const first = peek();
  if (!first) throw new YamlSubsetError(1, 'empty document');
  if (first.indent !== 0) throw new YamlSubsetError(first.n, 'the document must start at column 0');
  const doc = block(0, first.n);
  const rest = peek();
  if (rest) throw new YamlSubsetError(rest.n, 'unexpected content after the document');
  return doc;
}
