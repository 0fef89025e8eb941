import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JPEG_5x3 } from '../fixtures/images.js';
import { type Harness, startHarness } from '../support/harness.js';
import { waitFor } from '../support/proxy.js';
import { UPLOAD_MUTATION, uploadFile } from '../support/upload.js';

const BOUNDARY = 'signetslowbody';

/**
 * An upload's request head and its first parts, as a client writes them before the file's bytes:
 * `declared` bytes promised, far fewer sent.
 */
function uploadHead(url: string, token: string, declared: number): string {
  const parts = [
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query: UPLOAD_MUTATION, variables: { file: null } })}\r\n`,
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="map"\r\n\r\n${JSON.stringify({ 0: ['variables.file'] })}\r\n`,
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="slow.png"\r\nContent-Type: image/png\r\n\r\n`,
  ].join('');
  const { host } = new URL(url);
  return [
    'POST /graphql HTTP/1.1',
    `Host: ${host}`,
    `Authorization: Bearer ${token}`,
    'x-graphql-yoga-csrf: 1',
    `Content-Type: multipart/form-data; boundary=${BOUNDARY}`,
    `Content-Length: ${declared}`,
    '',
    parts,
  ].join('\r\n');
}

/** A raw connection to the gateway, closed (by either side) when `closed` settles, with when. */
function open(url: string): { socket: Socket; closed: Promise<number> } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => {});
  socket.resume();
  const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now())));
  return { socket, closed };
}

// Finding (a hostile-client review): 32 uploads whose bodies trickled a byte every 10 s held
// every upload slot of a node for Node's 300 s request timeout, again at each reconnect, and a
// client that dropped mid-upload was logged at error as an unexpected error, with a stack.
describe('upload bodies: a trickle cannot hold a slot, a dropped one is no error', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      driver: 'cos',
      redis: 'memory',
      // One slot per viewer, so a held one shows; a floor a trickle cannot keep to.
      env: { UPLOAD_CONCURRENCY_PER_VIEWER: '1', UPLOAD_MIN_BYTES_PER_SECOND: '2048' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a body slower than UPLOAD_MIN_BYTES_PER_SECOND is cut after the grace, and its slot freed', async () => {
    const token = await h.token('alice');
    const { socket, closed } = open(h.url);
    const started = performance.now();
    socket.write(uploadHead(h.url, token, 1_000_000));
    let cut = false;
    void closed.then(() => {
      cut = true;
    });
    // A byte every 200 ms: 5 B/s, far under the floor, but never idle for long.
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write('x');
    }, 200);
    try {
      await waitFor(() => h.container.uploadSlots.inFlight === 1, 10_000);
      // Held: alice's next upload waits its turn.
      const refused = await uploadFile(h, JPEG_5x3, { token });
      expect(refused.status).toBe(429);
      expect(refused.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');

      // Cut after the 10 s grace (plus what its few bytes earned), not after Node's 300 s.
      const at = await closed;
      expect(cut).toBe(true);
      expect(at - started).toBeGreaterThanOrEqual(10_000);
      expect(at - started).toBeLessThan(20_000);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
    await waitFor(() => h.container.uploadSlots.inFlight === 0, 10_000);
    expect(
      h.logs.some((l) => l.includes('upload cut: its body arrived slower than UPLOAD_MIN_BYTES_PER_SECOND')),
    ).toBe(true);
    const next = await uploadFile(h, JPEG_5x3, { token });
    expect(next.errors).toBeUndefined();
    expect(next.data?.uploadImage.id).toBeTruthy();
  }, 40_000);

  it('a client that drops mid-body frees its slot and writes no error line', async () => {
    const token = await h.token('bob');
    const before = h.logs.length;
    const { socket, closed } = open(h.url);
    socket.write(uploadHead(h.url, token, 200_000));
    socket.write(Buffer.alloc(1000, 1));
    await waitFor(() => h.container.uploadSlots.inFlight === 1, 10_000);
    socket.destroy();
    await closed;
    await waitFor(() => h.container.uploadSlots.inFlight === 0, 10_000);
    await waitFor(() => h.logs.slice(before).some((l) => l.includes('"status":"aborted"')), 10_000);
    const lines = h.logs.slice(before);
    expect(lines.filter((l) => l.includes('"level":50'))).toEqual([]);
    expect(lines.some((l) => l.includes('unexpected error'))).toBe(false);
  });
});
