import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { ReadLookup } from '../db/images-repo.js';
import type { ImageRow } from '../db/types.js';
import { VisibilityBatch } from './visibility-batch.js';

/** A repository that records each statement's ids; the first one finishes when the test says so. */
function heldRepo() {
  const statements: string[][] = [];
  let release: (() => void) | undefined;
  return {
    statements,
    finishFirst: () => release!(),
    async findReadableMany(lookups: readonly ReadLookup[]): Promise<ImageRow[][]> {
      statements.push(lookups.flatMap((l) => [...l.ids]));
      if (statements.length === 1) await new Promise<void>((resolve) => (release = resolve));
      return lookups.map(() => []);
    },
  };
}

const viewer = { id: 'u1', isAdmin: false };

describe('VisibilityBatch', () => {
  it('lookups that arrive while a statement runs wait for the window too, and go together', async () => {
    const repo = heldRepo();
    // A long window: the lookups below all arrive well inside it.
    const batch = new VisibilityBatch(repo, { windowMs: 400, maxIds: 1000 });
    const a = batch.visible(viewer, ['a']);
    while (repo.statements.length === 0) await new Promise((r) => setTimeout(r, 10));
    const b = batch.visible(viewer, ['b']);
    repo.finishFirst();
    await a;
    await nextTurn();
    // Sent as soon as the first statement ended, 'b' would have gone alone.
    const c = batch.visible(viewer, ['c']);
    await Promise.all([b, c]);
    expect(repo.statements).toEqual([['a'], ['b', 'c']]);
  });
});
