import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3Fixture, startS3Fixture } from '../../server/test/fixtures/s3-fixture.js';
import { s3Env, TEST_S3 } from '../../server/test/support/env.js';
import {
  imageStates,
  launchChromium,
  recordGraphql,
  screenshot,
  scrollThrough,
  waitForVisibleLoaded,
} from './helpers/browser';
import { Gateway } from './helpers/gateway';

// The gallery once with STORAGE_DRIVER=s3: the built gateway against s3rver behind the front that
// verifies every SigV4 signature, the browser fetching each image straight from that bucket
// through its presigned URL, every thumbnail a derived object Signet made (docs/architecture.md,
// "Variants on s3").

const COUNT = 30;
const DERIVED = '_signet/variants/';

interface PageAnswer {
  data: {
    images: {
      totalCount: number;
      edges: { node: { id: string; key: string; proxyUrl: string; thumb: { url: string } } }[];
    };
  };
}

/** The object key a path-style URL of the fixture names. */
function keyOf(url: string): string {
  const p = new URL(url).pathname;
  return decodeURIComponent(p.slice(TEST_S3.bucket.length + 2));
}

describe('gallery on s3', () => {
  let fixture: S3Fixture;
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    fixture = await startS3Fixture({ ...TEST_S3 });
    gateway = await Gateway.start({
      ...s3Env(fixture),
      SEED_DEMO: 'true',
      SEED_DEMO_COUNT: String(COUNT),
      // The seeded rows get their variants from the backfill, which starts with the workers.
      VARIANT_BACKFILL_INTERVAL_SECONDS: '2',
    });
    browser = await launchChromium();
    // Until the backfill has made them, thumbnails are the originals (docs: the fallback).
    const deadline = Date.now() + 120_000;
    for (;;) {
      const page = await gateway.graphql<PageAnswer['data']>(
        `query { images(first: ${COUNT}) { totalCount edges { node { id key signedUrl { url } thumb: signedUrl(preset: "thumb") { url } } } } }`,
      );
      const made = page.images.edges.filter((e) => keyOf(e.node.thumb.url).startsWith(DERIVED)).length;
      if (page.images.totalCount === COUNT && made === COUNT) break;
      if (Date.now() > deadline)
        throw new Error(`only ${made} of ${COUNT} thumbnails made: ${gateway.log()}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await fixture?.close();
  });

  it('loads every thumbnail from the bucket through a presigned URL of its derived object', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const graphql = recordGraphql(page);
    const fromBucket: { url: string; status: number; type: string | undefined }[] = [];
    page.on('response', (res) => {
      if (res.url().startsWith(fixture.url)) {
        fromBucket.push({ url: res.url(), status: res.status(), type: res.headers()['content-type'] });
      }
    });
    const checksBefore = fixture.signatureChecks;
    await page.goto(`${gateway.url}/?first=${COUNT}#/gallery`);
    await page.waitForFunction((n) => document.querySelectorAll('.smart-image').length === n, COUNT);
    await waitForVisibleLoaded(page);
    await screenshot(page, 'gallery-s3');
    await scrollThrough(page);

    const all = await imageStates(page);
    expect(all).toHaveLength(COUNT);
    for (const image of all) {
      expect(image.state, image.id).toBe('loaded');
      expect(image.naturalWidth, image.id).toBeGreaterThan(0);
    }

    const answer = (await graphql.find((c) => c.operationName === 'GalleryPage')!.response) as PageAnswer;
    const byId = new Map(answer.data.images.edges.map((e) => [e.node.id, e.node]));
    for (const image of all) {
      const node = byId.get(image.id)!;
      // A tile's src is its thumb: a presigned URL of the bucket for the derived object.
      expect(image.src).toBe(node.thumb.url);
      expect(image.src!.startsWith(`${fixture.url}/${TEST_S3.bucket}/`)).toBe(true);
      expect(new URL(image.src!).searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
      expect(keyOf(image.src!)).toBe(`${DERIVED}${node.key}/320x320-cover-webp-75`);
      // The original is not signed with the page (nobody looks at it there): "Original" is its
      // proxy link, which redirects to a URL signed for its own object when followed.
      expect(node.proxyUrl).toContain(`/proxy/${node.id}`);
    }

    // Every image byte came from the bucket (1× or 2× of the srcset, both derived), each answered
    // 200 as WebP after the front verified its signature.
    expect(fromBucket.length).toBeGreaterThanOrEqual(COUNT);
    for (const r of fromBucket) {
      expect(keyOf(r.url).startsWith(DERIVED), r.url).toBe(true);
      expect(r.status, r.url).toBe(200);
      expect(r.type).toBe('image/webp');
    }
    expect(new Set(fromBucket.map((r) => keyOf(r.url).split('/').slice(2, -1).join('/'))).size).toBe(COUNT);
    expect(fixture.signatureChecks - checksBefore).toBeGreaterThanOrEqual(fromBucket.length);
    expect(fixture.signatureFailures).toBe(0);
    await page.close();
  });
});
