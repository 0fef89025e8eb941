import { FakeClock } from '../../src/clock.js';
import { seedImages } from '../../src/seed.js';
import type { Harness } from './harness.js';

/** Seeds `count` small PNGs for `owner` through the harness's real storage and database. */
export async function seed(h: Harness, owner: string, count: number): Promise<string[]> {
  return seedImages({
    storage: h.storage,
    images: h.container.imagesRepo,
    clock: h.container.clock instanceof FakeClock ? h.container.clock : { now: () => Date.now() },
    ownerId: owner,
    count,
    width: 24,
    height: 16,
  });
}

export const PAGE_QUERY = /* GraphQL */ `
  query Page($first: Int, $after: String, $minTtl: Int) {
    images(first: $first, after: $after) {
      edges { cursor node { id key byteSize signedUrl(minTtl: $minTtl) { url expiresAt refreshAt cached } } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

export interface PageData {
  images: {
    edges: {
      cursor: string;
      node: {
        id: string;
        key: string;
        byteSize: number;
        signedUrl: { url: string; expiresAt: string; refreshAt: string; cached: boolean };
      };
    }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}
