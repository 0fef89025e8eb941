import type { Bench, Section } from '../lib/bench.js';
import { coldPage } from './cold-page.js';
import { fanOut } from './fan-out.js';
import { memory } from './memory.js';
import { oneUrlPerStep } from './one-url-per-step.js';
import { perImageVsBatch } from './per-image.js';
import { proxyRedirect } from './proxy-redirect.js';
import { proxyStream } from './proxy-stream.js';
import { refresh } from './refresh.js';
import { roundTrips } from './round-trips.js';
import { scaling } from './scaling.js';
import { variantPage } from './variant-page.js';
import { warmPage } from './warm-page.js';

/**
 * The scenarios that need the running services, by id, in the order a run gives them the one
 * gateway (destructive ones last): bench/run.ts runs them, bench/tools/proxy-after.ts replays the
 * ones before scenario 6.
 */
export const SCENARIOS_WITH_SERVICES: [string, (b: Bench) => Promise<Section>][] = [
  ['1', warmPage],
  ['14', variantPage],
  ['11', scaling],
  ['4', coldPage],
  ['2', roundTrips],
  ['12', oneUrlPerStep],
  ['3', perImageVsBatch],
  ['6', proxyRedirect],
  ['7', proxyStream],
  ['10', memory],
  ['9', fanOut],
  ['8', refresh],
];
