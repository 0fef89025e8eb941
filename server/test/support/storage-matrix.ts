import { afterAll, beforeAll, beforeEach, describe } from 'vitest';
import { createCosStorage } from '../../src/storage/cos.js';
import { createS3Storage } from '../../src/storage/s3.js';
import type { Storage } from '../../src/storage/storage.js';
import { type CosFixture, startCosFixture } from '../fixtures/cos-fixture.js';
import { type S3Fixture, startS3Fixture } from '../fixtures/s3-fixture.js';
import { COS_CREDENTIALS, cosStorageOptions, TEST_S3 } from './env.js';

/**
 * The object-store drivers, each against its verifying fixture, behind one shape, so a storage
 * test is written once and runs for every driver: `describeStorageDrivers('...', (backend) => …)`.
 * Each has its starter in STARTERS (a name without one does not compile).
 */
export const STORAGE_DRIVERS = ['cos', 's3'] as const satisfies readonly Storage['driver'][];
export type StorageDriverName = (typeof STORAGE_DRIVERS)[number];

export interface DriverOptions {
  timeoutMs?: number;
  streamSockets?: number;
  putMinBytesPerSecond?: number;
  /** Sign with this secret instead of the fixture's (its URLs and requests must be refused). */
  secret?: string;
}

export interface StorageBackend {
  readonly name: StorageDriverName;
  /** A new driver instance for the fixture's bucket. */
  storage(options?: DriverOptions): Storage;
  /** The bytes the store keeps under `key`, read past the driver (undefined when missing). */
  stored(key: string): Promise<Buffer | undefined>;
  /** The same URL with one hex digit of its signature changed. */
  tamperSignature(url: string): string;
  /** Requests that reached the store (for the ones the test caused, compare before and after). */
  readonly requests: {
    total: number;
    aborted: number;
    /** PUTs whose client stopped sending before Content-Length bytes (nothing was stored). */
    putsCut: number;
    log: { method: string; key: string; status: number }[];
  };
  readonly signatureChecks: number;
  readonly signatureFailures: number;
  failNext(n: number, status?: number): void;
  setLatency(ms: number): void;
  hang(on: boolean): void;
  /** Read PUT bodies at most this fast (bytes per second; 0: as fast as they come). */
  setPutBodyRate(bytesPerSecond: number): void;
  /** Store each PUT's object, then hold its answer; turning this off answers the held ones. */
  holdPutResponses(on: boolean): void;
}

interface Started extends StorageBackend {
  reset(): Promise<void>;
  close(): Promise<void>;
}

function changeHexDigit(url: string, param: string): string {
  return url.replace(
    new RegExp(`${param}=([0-9a-f])`),
    (_m, c: string) => `${param}=${c === 'a' ? 'b' : 'a'}`,
  );
}

async function startCos(now: () => number): Promise<Started> {
  const fixture: CosFixture = await startCosFixture({ ...COS_CREDENTIALS, now });
  return {
    name: 'cos',
    storage: (o = {}) =>
      createCosStorage({
        ...cosStorageOptions(fixture),
        timeoutMs: o.timeoutMs ?? 3_000,
        ...(o.streamSockets ? { streamSockets: o.streamSockets } : {}),
        ...(o.putMinBytesPerSecond ? { putMinBytesPerSecond: o.putMinBytesPerSecond } : {}),
        ...(o.secret ? { secretKey: o.secret } : {}),
      }),
    stored: async (key) => fixture.objects.get(key)?.body,
    tamperSignature: (url) => changeHexDigit(url, 'q-signature'),
    get requests() {
      return fixture.requests;
    },
    get signatureChecks() {
      return fixture.signatureChecks;
    },
    get signatureFailures() {
      return fixture.signatureFailures;
    },
    failNext: (n, status) => fixture.failNext(n, status),
    setLatency: (ms) => fixture.setLatency(ms),
    hang: (on) => fixture.hang(on),
    setPutBodyRate: (rate) => fixture.setPutBodyRate(rate),
    holdPutResponses: (on) => fixture.holdPutResponses(on),
    reset: async () => fixture.reset(),
    close: () => fixture.close(),
  };
}

async function startS3(now: () => number): Promise<Started> {
  const fixture: S3Fixture = await startS3Fixture({ ...TEST_S3, now });
  return {
    name: 's3',
    storage: (o = {}) =>
      createS3Storage({
        ...TEST_S3,
        endpoint: fixture.url,
        forcePathStyle: true,
        timeoutMs: o.timeoutMs ?? 3_000,
        ...(o.streamSockets ? { streamSockets: o.streamSockets } : {}),
        ...(o.putMinBytesPerSecond ? { putMinBytesPerSecond: o.putMinBytesPerSecond } : {}),
        ...(o.secret ? { secretAccessKey: o.secret } : {}),
      }),
    stored: (key) => fixture.stored(key),
    tamperSignature: (url) => changeHexDigit(url, 'X-Amz-Signature'),
    get requests() {
      return fixture.requests;
    },
    get signatureChecks() {
      return fixture.signatureChecks;
    },
    get signatureFailures() {
      return fixture.signatureFailures;
    },
    failNext: (n, status) => fixture.failNext(n, status),
    setLatency: (ms) => fixture.setLatency(ms),
    hang: (on) => fixture.hang(on),
    setPutBodyRate: (rate) => fixture.setPutBodyRate(rate),
    holdPutResponses: (on) => fixture.holdPutResponses(on),
    reset: () => fixture.reset(),
    close: () => fixture.close(),
  };
}

type Starter = (now: () => number) => Promise<Started>;

/**
 * Every driver of `Storage['driver']`, with the starter of its fixture or `undefined` for one the
 * matrix cannot run, so a new driver does not compile until it says which. `local` has no HTTP
 * fixture to stand behind this shape (no request counting or fault injection: its URLs are the
 * gateway's own `/local-bucket` route); it is covered by server/src/storage/local*.test.ts and
 * server/test/storage/local-bucket.test.ts, local-variants.test.ts.
 */
const STARTERS = {
  cos: startCos,
  s3: startS3,
  local: undefined,
} as const satisfies { [D in Storage['driver']]: Starter | undefined };

export interface MatrixContext {
  /** The running backend of the current driver (set in beforeAll). */
  backend(): StorageBackend;
  /** Added to the fixture's clock, to move "now" past a URL's window (reset before each test). */
  skew(ms: number): void;
}

/**
 * One describe block per driver, each with its fixture started once, emptied before every test
 * and closed after the block.
 */
export function describeStorageDrivers(
  title: string,
  body: (ctx: MatrixContext) => void,
  drivers: readonly StorageDriverName[] = STORAGE_DRIVERS,
): void {
  describe.each(drivers)(`${title} [%s]`, (name) => {
    let started: Started | undefined;
    let skewMs = 0;
    const now = () => Date.now() + skewMs;
    beforeAll(async () => {
      started = await STARTERS[name](now);
    });
    beforeEach(async () => {
      skewMs = 0;
      await started?.reset();
    });
    afterAll(async () => {
      await started?.close();
    });
    body({
      backend: () => {
        if (!started) throw new Error(`the ${name} fixture did not start`);
        return started;
      },
      skew: (ms) => {
        skewMs = ms;
      },
    });
  });
}
