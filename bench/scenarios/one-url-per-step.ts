import { type Bench, graphql, type Section } from '../lib/bench.js';
import { gatewayEnv, PRODUCT_NODE_FLAGS } from '../lib/config.js';
import { sleep, startNode } from '../lib/processes.js';

const QUERY =
  'query Page($first: Int!) { images(first: $first) { edges { node { id signedUrl { url expiresAt } } } } }';
type Page = { images: { edges: { node: { id: string; signedUrl: { url: string; expiresAt: string } } }[] } };

/**
 * Scenario 12: the window grid. Two gateway processes of one deployment (the same Redis,
 * PostgreSQL and bucket) with a step of 3 s (TTL 6 s, ahead 3 s) and their own sweeps; a page of
 * 100 images asked of both, alternately, every 250 ms while 10 steps pass. Counted: distinct URLs
 * per (image, step) across both nodes (the grid's promise: 1.00), and what a page left open
 * costs the bucket: a browser with a URL-keyed HTTP cache reloading the page every 250 ms fetches
 * each distinct URL once (one download per step, where a URL per request would be one per
 * request). A page left open without reloads is measured in Chromium by the e2e tests.
 */
export async function oneUrlPerStep(b: Bench): Promise<Section> {
  const env = gatewayEnv(b.endpoints, {
    URL_TTL_SECONDS: '6',
    REFRESH_AHEAD_SECONDS: '3',
    SIGNET_ROLE: 'all',
    // Its own cache keys: the main gateway's hour-long URLs must not be read as this grid's.
    REDIS_PREFIX: 'grid:',
  });
  const nodes = [await startNode('grid-a', [...PRODUCT_NODE_FLAGS, 'server/dist/main.js'], env)];
  try {
    nodes.push(await startNode('grid-b', [...PRODUCT_NODE_FLAGS, 'server/dist/main.js'], env));
    const steps = b.quick ? 3 : 10;
    const stepMs = 3000;
    /** image -> step (expiresAt) -> distinct URLs */
    const seen = new Map<string, Map<string, Set<string>>>();
    let requests = 0;
    const end = Date.now() + steps * stepMs;
    for (let i = 0; Date.now() < end; i++) {
      const page = await graphql<Page>(nodes[i % 2]!.url, b.tokens.main, QUERY, { first: 100 });
      requests++;
      for (const e of page.images.edges) {
        const byStep = seen.get(e.node.id) ?? new Map<string, Set<string>>();
        const urls = byStep.get(e.node.signedUrl.expiresAt) ?? new Set<string>();
        urls.add(e.node.signedUrl.url);
        byStep.set(e.node.signedUrl.expiresAt, urls);
        seen.set(e.node.id, byStep);
      }
      await sleep(250);
    }
    let pairs = 0;
    let urls = 0;
    let distinctPerImage = 0;
    for (const byStep of seen.values()) {
      for (const set of byStep.values()) {
        pairs++;
        urls += set.size;
      }
      distinctPerImage += [...byStep.values()].reduce((a, s) => a + s.size, 0);
    }
    const perStep = urls / pairs;
    const downloadsPerImage = distinctPerImage / seen.size;
    const requestsPerImage = requests;
    return {
      id: '12',
      title: 'One URL per image per window',
      rows: [
        {
          id: '12',
          what: 'URLs per image per step (two nodes, one step = 3 s)',
          figure: `${perStep.toFixed(2)} (${urls} URLs for ${pairs} image-steps, ${requests} pages over ${steps} steps)`,
          target: '= 1.00',
          pass: perStep === 1,
        },
        {
          id: '12',
          what: `bucket downloads per image, page reloaded every 250 ms for ${steps} steps (URL-keyed browser cache)`,
          figure: `${downloadsPerImage.toFixed(2)} (one per step; a URL per request would be ${requestsPerImage})`,
          target: `≤ ${steps + 1} (one per step)`,
          pass: downloadsPerImage <= steps + 1,
        },
      ],
      details: { steps, requests, pairs, urls, downloadsPerImage },
      notes: [
        'A page left open (not reloaded) downloads each image once: SmartImage keeps what it shows and a newer URL only serves the next load; measured in Chromium by web/e2e (live refresh).',
      ],
    };
  } finally {
    for (const n of nodes) await n.stop();
  }
}
