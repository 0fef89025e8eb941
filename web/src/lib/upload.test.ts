import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UploadError, uploadImage } from './upload';

/**
 * The browser's XMLHttpRequest, faked at its edge: the test answers each request with a status and
 * a body (or a network failure) and sees what was sent.
 */
class FakeXhr {
  static last: FakeXhr | null = null;
  status = 0;
  responseText = '';
  readonly headers: Record<string, string> = {};
  readonly upload: { onprogress: ((e: ProgressEvent) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  method = '';
  url = '';
  body: unknown = null;

  constructor() {
    FakeXhr.last = this;
  }
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  send(body: unknown) {
    this.body = body;
  }
  abort() {
    this.onabort?.();
  }
  answer(status: number, body: unknown) {
    this.status = status;
    this.responseText = typeof body === 'string' ? body : JSON.stringify(body);
    this.onload?.();
  }
  fail() {
    this.onerror?.();
  }
}

const file = () => new File([new Uint8Array([1, 2, 3])], 'photo.png', { type: 'image/png' });
const graphqlError = (code: string, message = `failed: ${code}`) => ({
  data: null,
  errors: [{ message, extensions: { code } }],
});

/** Starts an upload, lets `respond` answer it, and returns what it was rejected with. */
async function failure(respond: (xhr: FakeXhr) => void): Promise<UploadError> {
  const pending = uploadImage(file(), () => {});
  respond(FakeXhr.last!);
  const err = await pending.then(
    () => {
      throw new Error('the upload succeeded');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UploadError);
  return err as UploadError;
}

describe('uploadImage', () => {
  beforeEach(() => {
    vi.stubGlobal('XMLHttpRequest', FakeXhr);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    FakeXhr.last = null;
  });

  it('resolves with the uploaded image, reporting progress to the end', async () => {
    const progress: number[] = [];
    const pending = uploadImage(file(), (f) => progress.push(f));
    const xhr = FakeXhr.last!;
    expect(xhr.method).toBe('POST');
    expect(xhr.headers['apollo-require-preflight']).toBe('true');
    xhr.upload.onprogress?.({ lengthComputable: true, loaded: 1, total: 2 } as ProgressEvent);
    xhr.answer(200, { data: { uploadImage: { id: 'img-1' } } });
    expect(await pending).toEqual({ id: 'img-1' });
    expect(progress).toEqual([0.5, 1]);
  });

  // The answer is a gallery tile: the `thumb` preset's URLs, or the original's on a gateway
  // without that preset (lib/presets.ts; asking for a preset it lacks would fail the upload).
  it.each([
    [undefined, true],
    [true, true],
    [false, false],
  ])('the thumb option %s sends $thumb: %s', async (thumb, sent) => {
    const pending = uploadImage(file(), () => {}, thumb === undefined ? {} : { thumb });
    const xhr = FakeXhr.last!;
    const operations = JSON.parse(String((xhr.body as FormData).get('operations'))) as {
      query: string;
      variables: Record<string, unknown>;
    };
    expect(operations.variables).toEqual({ file: null, thumb: sent });
    expect(operations.query).toContain('mutation UploadImage($file: File!, $thumb: Boolean = true)');
    xhr.answer(200, { data: { uploadImage: { id: 'img-1' } } });
    await pending;
  });

  // Files the gateway refuses fail the same way every time: no Retry for them.
  it.each([
    ['PAYLOAD_TOO_LARGE', 413],
    ['UNSUPPORTED_MEDIA_TYPE', 415],
    ['BAD_USER_INPUT', 400],
    ['FORBIDDEN', 403],
  ])('a %s answer is not retryable, and keeps the gateway’s message', async (code, status) => {
    const err = await failure((xhr) => xhr.answer(status, graphqlError(code, 'The file is not an image')));
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
    expect(err.message).toBe('The file is not an image');
    expect(err.retryable).toBe(false);
  });

  // The gateway's code decides, whatever the HTTP status (a GraphQL error may come with 200).
  it.each([
    ['RATE_LIMITED', 429],
    ['SERVICE_UNAVAILABLE', 503],
    ['INTERNAL_SERVER_ERROR', 500],
    ['SERVICE_UNAVAILABLE', 200],
    // Once the app has a new token (lib/session.ts), the same file goes through.
    ['UNAUTHENTICATED', 401],
  ])('a %s answer (HTTP %i) is retryable', async (code, status) => {
    const err = await failure((xhr) => xhr.answer(status, graphqlError(code)));
    expect(err.code).toBe(code);
    expect(err.retryable).toBe(true);
  });

  it('a network failure is retryable', async () => {
    const err = await failure((xhr) => xhr.fail());
    expect(err.code).toBe('NETWORK_ERROR');
    expect(err.status).toBe(0);
    expect(err.retryable).toBe(true);
  });

  // Not JSON: an error page from something in front of the gateway. Its status is all there is.
  it.each([
    [502, 'SERVICE_UNAVAILABLE', true],
    [504, 'SERVICE_UNAVAILABLE', true],
    [500, 'INTERNAL_SERVER_ERROR', true],
    [429, 'RATE_LIMITED', true],
    [408, 'REQUEST_TIMEOUT', true],
    [413, 'PAYLOAD_TOO_LARGE', false],
    [404, 'BAD_REQUEST', false],
  ])('an HTML answer with HTTP %i is %s (retryable: %s)', async (status, code, retryable) => {
    const err = await failure((xhr) => xhr.answer(status, '<html><body>Bad gateway</body></html>'));
    expect(err.code).toBe(code);
    expect(err.message).toBe(`Upload failed (HTTP ${status})`);
    expect(err.retryable).toBe(retryable);
  });
});
