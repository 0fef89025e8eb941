import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { buildManifest, canonicalDocument, readWebDocuments, sha256Hex } from './operation-manifest.js';

const SOURCE = `
fragment A on Image { id ...B }
fragment B on Image { key }
fragment Unused on Image { width }
query Page($first: Int!) { images(first: $first) { edges { node { ...A } } } }
mutation Del($id: ID!) { deleteImage(id: $id) }
`;

describe('buildManifest', () => {
  it('one standalone document per operation, keyed by the sha256 of its text, with the fragments it uses', () => {
    const m = buildManifest([SOURCE]);
    const docs = Object.values(m);
    expect(docs).toHaveLength(2);
    for (const [hash, doc] of Object.entries(m)) expect(hash).toBe(sha256Hex(doc));
    const page = docs.find((d) => d.startsWith('query Page'))!;
    expect(page).toContain('fragment A on Image');
    expect(page).toContain('fragment B on Image'); // used through A
    expect(page).not.toContain('Unused');
    expect(docs.find((d) => d.startsWith('mutation Del'))).not.toContain('fragment');
  });

  it('is the same whatever the order or split of the sources', () => {
    const parts = SOURCE.trim().split('\n');
    expect(buildManifest([parts.reverse().join('\n')])).toEqual(buildManifest([SOURCE]));
    expect(buildManifest(parts)).toEqual(buildManifest([SOURCE]));
  });

  it('refuses anonymous operations, unknown and duplicate fragments', () => {
    expect(() => buildManifest(['{ viewer { id } }'])).toThrow(/anonymous/);
    expect(() => buildManifest(['query Q { images { edges { node { ...X } } } }'])).toThrow(
      /unknown fragment X/,
    );
    expect(() => buildManifest(['fragment A on Image { id }', 'fragment A on Image { key }'])).toThrow(
      /twice/,
    );
  });
});

describe('canonicalDocument', () => {
  const canon = (s: string) => canonicalDocument(parse(s));
  it('ignores formatting, __typename and the order of fragments', () => {
    const plain =
      'query Q { images { edges { node { ...F } } } } fragment F on Image { id } fragment G on Image { key }';
    const apollo = `query Q {
      images { edges { node { ...F __typename } __typename } __typename }
    }
    fragment G on Image { key __typename }
    fragment F on Image { id __typename }`;
    expect(canon(apollo)).toBe(canon(plain));
  });

  it('tells apart documents that ask for anything more', () => {
    expect(canon('query Q { viewer { id } }')).not.toBe(canon('query Q { viewer { id isAdmin } }'));
    expect(canon('query Q { viewer { id } }')).not.toBe(canon('query Q { v: viewer { id } }'));
    expect(canon('query Q { images(first: 1) { totalCount } }')).not.toBe(
      canon('query Q { images(first: 2) { totalCount } }'),
    );
  });
});

describe('readWebDocuments', () => {
  it('reads .graphql files and embedded graphql(`…`) documents, not generated code or tests', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-docs-'));
    try {
      await mkdir(path.join(dir, 'gql'));
      await mkdir(path.join(dir, 'views'));
      await writeFile(path.join(dir, 'a.graphql'), 'query A { viewer { id } }');
      await writeFile(
        path.join(dir, 'views', 'B.vue'),
        'const q = graphql(`query B { viewer { isAdmin } }`);',
      );
      await writeFile(
        path.join(dir, 'gql', 'graphql.ts'),
        'export const x = graphql(`query Generated { viewer { id } }`);',
      );
      await writeFile(path.join(dir, 'c.test.ts'), 'gql`query Test { viewer { id } }`');
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the file holds an interpolated template
      await writeFile(path.join(dir, 'd.ts'), 'graphql(`query D { images(first: ${n}) { totalCount } }`)');
      const docs = readWebDocuments(dir);
      expect(docs).toEqual(['query A { viewer { id } }', 'query B { viewer { isAdmin } }']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
