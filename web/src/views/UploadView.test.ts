import { SMART_IMAGE_DEPS, SmartImage, type SmartImageSource } from '@signet/vue';
import { DefaultApolloClient } from '@vue/apollo-composable';
import { flushPromises, mount } from '@vue/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApolloClient } from '../lib/apollo';
import { clearToken, setToken } from '../lib/auth';
import { createSession, SESSION, type Session } from '../lib/session';
import { UploadError, uploadImage } from '../lib/upload';
import { galleryImage, presetsAnswer, quietImages } from '../test-support/gallery-fixtures';
import UploadView from './UploadView.vue';

// The request itself is lib/upload.ts's (upload.test.ts); here each file's outcome is scripted.
vi.mock('../lib/upload', async (real) => ({
  ...(await real<typeof import('../lib/upload')>()),
  uploadImage: vi.fn(),
}));
const upload = vi.mocked(uploadImage);
const uploaded = galleryImage(1);

/**
 * The gateway's answer to viewer.uploadLimits (each time asked), or none at all (`{}`); to
 * ImagePresets, `presets` (the default IMAGE_PRESETS' names unless said; 'network': it fails).
 */
function mountView(
  limits?: object | (() => object),
  asked?: { count: number },
  session?: Session,
  presets?: readonly string[] | (() => readonly string[] | 'network'),
) {
  const transport = async (_url: RequestInfo | URL, init?: RequestInit) => {
    const { operationName } = JSON.parse(String(init?.body)) as { operationName: string };
    if (operationName === 'ImagePresets') {
      const names = typeof presets === 'function' ? presets() : presets;
      if (names === 'network') throw new TypeError('Failed to fetch');
      return new Response(JSON.stringify(presetsAnswer(names)), {
        headers: { 'content-type': 'application/json' },
      });
    }
    if (asked) asked.count++;
    const now = typeof limits === 'function' ? limits() : limits;
    const body = now ? { data: { viewer: { __typename: 'Viewer', id: 'demo', uploadLimits: now } } } : {};
    return new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } });
  };
  const client = createApolloClient('/graphql', transport as typeof fetch);
  return mount(UploadView, {
    attachTo: document.body,
    global: {
      provide: {
        [DefaultApolloClient]: client,
        [SMART_IMAGE_DEPS as symbol]: quietImages,
        ...(session ? { [SESSION as symbol]: session } : {}),
      },
    },
  });
}

async function pick(w: ReturnType<typeof mountView>, ...names: (string | [string, number])[]) {
  const input = w.get<HTMLInputElement>('[data-testid=file-input]');
  const files = names.map((n) => {
    const [name, size] = typeof n === 'string' ? [n, 3] : n;
    return new File([new Uint8Array(size)], name, { type: 'image/png' });
  });
  Object.defineProperty(input.element, 'files', { value: files, configurable: true });
  await input.trigger('change');
  await flushPromises();
}

const row = (w: ReturnType<typeof mountView>, name: string) => {
  const found = w.findAll('.upload').find((r) => r.get('.upload__name').text() === name);
  if (!found) throw new Error(`no row for ${name}`);
  return found;
};
const buttons = (w: ReturnType<typeof mountView>, name: string) =>
  row(w, name)
    .findAll('button')
    .map((b) => b.attributes('aria-label'));

afterEach(() => {
  upload.mockReset();
  clearToken();
  document.body.innerHTML = '';
});

describe('UploadView', () => {
  it('offers Retry only where a retry can help, and Dismiss where it cannot', async () => {
    const outcomes: Record<string, UploadError> = {
      'huge.png': new UploadError(
        'The file is larger than the upload limit of 20 MiB',
        'PAYLOAD_TOO_LARGE',
        413,
      ),
      'notes.png': new UploadError(
        'The file is not a JPEG, PNG, GIF, WebP or AVIF image',
        'UNSUPPORTED_MEDIA_TYPE',
        415,
      ),
      'broken.png': new UploadError('The image header cannot be read', 'BAD_USER_INPUT', 400),
      'flaky.png': new UploadError('Network error while uploading', 'NETWORK_ERROR'),
      'busy.png': new UploadError('Too many uploads in flight', 'RATE_LIMITED', 429),
      'away.png': new UploadError('The database is away', 'SERVICE_UNAVAILABLE', 503),
    };
    upload.mockImplementation(async (file) => {
      throw outcomes[file.name];
    });
    const w = mountView();
    await pick(w, ...Object.keys(outcomes));

    expect(w.findAll('.upload[data-status=failed]')).toHaveLength(6);
    // Each button names its file: six rows of "Retry" were six identical buttons to a screen reader.
    for (const name of ['huge.png', 'notes.png', 'broken.png'] as const) {
      expect(buttons(w, name)).toEqual([`Dismiss ${name}`]);
    }
    for (const name of ['flaky.png', 'busy.png', 'away.png']) {
      expect(buttons(w, name)).toEqual([`Retry ${name}`]);
    }
    expect(row(w, 'huge.png').get('.upload__error').text()).toBe(
      'The file is larger than the upload limit of 20 MiB',
    );
    w.unmount();
  });

  it('a retry after a network failure uploads the file again, and can succeed', async () => {
    upload.mockRejectedValueOnce(new UploadError('Network error while uploading', 'NETWORK_ERROR'));
    const w = mountView();
    await pick(w, 'photo.png');
    expect(row(w, 'photo.png').attributes('data-status')).toBe('failed');

    upload.mockResolvedValueOnce(uploaded);
    await row(w, 'photo.png').get('button').trigger('click');
    await flushPromises();
    expect(upload).toHaveBeenCalledTimes(2);
    expect(upload.mock.calls[1]![0].name).toBe('photo.png');
    expect(row(w, 'photo.png').attributes('data-status')).toBe('done');
    expect(row(w, 'photo.png').find('button').exists()).toBe(false);
    w.unmount();
  });

  it('tells screen readers what failed: the summary counts it, a live region says why', async () => {
    upload.mockImplementation(async (file) => {
      if (file.name === 'notes.png')
        throw new UploadError('The file is not an image', 'UNSUPPORTED_MEDIA_TYPE', 415);
      return uploaded;
    });
    const w = mountView();
    await pick(w, 'photo.png', 'notes.png');
    await flushPromises();
    expect(w.get('[data-testid=upload-summary]').text()).toBe('1 uploaded, 1 failed');
    expect(w.get('[data-testid=upload-summary]').attributes('aria-live')).toBe('polite');
    const news = w.get('[data-testid=upload-news]');
    expect(news.attributes('role')).toBe('status');
    expect(news.text()).toBe('notes.png failed: The file is not an image.');
    // The refused file's bar is no progress bar at 100 % "Uploading notes.png": its status says why.
    const bar = row(w, 'notes.png').get('[data-testid=upload-progress]');
    expect(bar.attributes('role')).toBeUndefined();
    expect(bar.attributes('aria-hidden')).toBe('true');
    expect(row(w, 'photo.png').get('[role=progressbar]').attributes('aria-label')).toBe('Uploaded photo.png');
    w.unmount();
  });

  it('Retry puts focus on the file’s row (its button goes with the failure)', async () => {
    upload.mockRejectedValueOnce(new UploadError('Network error while uploading', 'NETWORK_ERROR'));
    upload.mockImplementation(() => new Promise(() => {}));
    const w = mountView();
    await pick(w, 'photo.png');
    const button = row(w, 'photo.png').get<HTMLButtonElement>('button');
    button.element.focus();
    await button.trigger('click');
    await flushPromises();
    expect(row(w, 'photo.png').attributes('data-status')).toBe('uploading');
    expect(document.activeElement).toBe(row(w, 'photo.png').element);
    expect(w.get('[data-testid=upload-summary]').text()).toBe('Uploading 1 of 1');
    w.unmount();
  });

  it('Dismiss takes a refused file off the list and puts focus back on picking files', async () => {
    upload.mockRejectedValue(new UploadError('The file is not an image', 'UNSUPPORTED_MEDIA_TYPE', 415));
    const w = mountView();
    await pick(w, 'a.png', 'b.png');
    await row(w, 'a.png').get('button').trigger('click');
    expect(w.findAll('.upload').map((r) => r.get('.upload__name').text())).toEqual(['b.png']);
    expect(document.activeElement).toBe(w.get('[data-testid=file-input]').element);
    w.unmount();
  });
});

const MiB = 1024 * 1024;
const limitsOf = (quota: object | null, maxConcurrent = 4, maxFileBytes = 2 * MiB) => ({
  __typename: 'UploadLimits',
  maxFileBytes,
  contentTypes: ['image/jpeg', 'image/png', 'image/svg+xml'],
  formatNames: ['JPEG', 'PNG', 'SVG'],
  maxConcurrent,
  quota: quota && { __typename: 'UploadQuota', ...quota },
});

describe('UploadView with the limits the gateway gave', () => {
  it('says what it takes before a file is picked, and the picker offers those types', async () => {
    const w = mountView(limitsOf(null));
    await flushPromises();
    expect(w.get('[data-testid=upload-limits]').text()).toMatch(/^JPEG, PNG or SVG, up to 2 MiB a file\./);
    expect(w.get('[data-testid=file-input]').attributes('accept')).toBe('image/jpeg,image/png,image/svg+xml');
    expect(w.find('[data-testid=upload-quota]').exists()).toBe(false);
    w.unmount();
  });

  it('refuses a file over the limit without sending it, in the words the gateway would use', async () => {
    upload.mockResolvedValue(uploaded);
    const w = mountView(limitsOf(null));
    await flushPromises();
    await pick(w, ['big.png', 2 * MiB + 1], ['fine.png', 2 * MiB]);
    expect(upload).toHaveBeenCalledTimes(1);
    expect(upload.mock.calls[0]![0].name).toBe('fine.png');
    expect(row(w, 'big.png').attributes('data-status')).toBe('failed');
    // The exact counts beside the rounded ones: a byte over reads as more than the limit.
    expect(row(w, 'big.png').get('.upload__error').text()).toBe(
      'The file is 2 MiB (2,097,153 bytes), larger than the upload limit of 2 MiB (2,097,152 bytes)',
    );
    expect(buttons(w, 'big.png')).toEqual(['Dismiss big.png']);
    w.unmount();
  });

  it('shows the quota, counts files on their way, and refuses what would not fit', async () => {
    // Two uploads never settle: they stay on their way, counted against the quota.
    upload.mockImplementation(() => new Promise(() => {}));
    const w = mountView(
      limitsOf({ maxBytes: 10 * MiB, maxFiles: 3, usedBytes: 6 * MiB, usedFiles: 1 }, 4, 8 * MiB),
    );
    await flushPromises();
    const meter = w.get<HTMLMeterElement>('[data-testid=upload-quota] meter');
    expect(meter.element.value).toBeCloseTo(0.6);
    expect(meter.attributes('aria-valuetext')).toBe('1 of 3 images and 6 MiB of 10 MiB used');

    await pick(w, ['a.png', MiB], ['b.png', 3 * MiB + 1], ['c.png', MiB]);
    // a fits (7 MiB), b does not (3 MiB and a byte left of 10), c does (8 MiB, the third image).
    expect(upload.mock.calls.map((c) => c[0].name)).toEqual(['a.png', 'c.png']); // in the order picked
    expect(row(w, 'b.png').get('.upload__error').text()).toBe(
      'The file is 3 MiB (3,145,729 bytes), more than is left of the upload quota: 3 MiB (3,145,728 bytes) of 10 MiB (10,485,760 bytes)',
    );
    expect(w.get('[data-testid=upload-quota] .quota__text').text()).toBe(
      '3 of 3 images and 8 MiB of 10 MiB used',
    );
    await pick(w, 'd.png');
    expect(row(w, 'd.png').get('.upload__error').text()).toBe(
      'The upload quota of 3 images is used up; delete an image to upload another',
    );
    w.unmount();
  });

  it('asks for the quota again after an upload, and sends no more at once than one viewer may', async () => {
    let release = () => {};
    upload.mockImplementation(
      () =>
        new Promise((resolve) => {
          release = () => resolve(uploaded);
        }),
    );
    const asked = { count: 0 };
    const w = mountView(limitsOf({ maxBytes: null, maxFiles: 50, usedBytes: 0, usedFiles: 0 }, 1), asked);
    await flushPromises();
    const before = asked.count;
    await pick(w, 'a.png', 'b.png');
    expect(upload).toHaveBeenCalledTimes(1); // maxConcurrent 1
    release();
    await flushPromises();
    expect(upload).toHaveBeenCalledTimes(2);
    expect(asked.count).toBeGreaterThan(before);
    w.unmount();
  });

  it("counts a done upload until the gateway's figure has it, and never twice", async () => {
    // The gateway's own count: one more once an upload is in.
    let stored = 1;
    const finish: (() => void)[] = [];
    upload.mockImplementation(
      () =>
        new Promise((resolve) => {
          finish.push(() => {
            stored++;
            resolve(uploaded);
          });
        }),
    );
    const w = mountView(() => limitsOf({ maxBytes: null, maxFiles: 4, usedBytes: 0, usedFiles: stored }));
    await flushPromises();
    const text = () => w.get('[data-testid=upload-quota] .quota__text').text();
    expect(text()).toBe('1 of 4 images used');
    await pick(w, 'a.png', 'b.png');
    expect(text()).toBe('3 of 4 images used'); // two on their way
    finish[0]!();
    await flushPromises();
    // The gateway was asked after a was in: its 2, and b still on its way.
    expect(text()).toBe('3 of 4 images used');
    finish[1]!();
    await flushPromises();
    expect(text()).toBe('3 of 4 images used');
    await pick(w, 'c.png', 'd.png');
    expect(row(w, 'd.png').get('.upload__error').text()).toBe(
      'The upload quota of 4 images is used up; delete an image to upload another',
    );
    w.unmount();
  });

  it('a retry is refused here when the quota has filled up since the first try', async () => {
    upload.mockRejectedValueOnce(new UploadError('Network error while uploading', 'NETWORK_ERROR'));
    upload.mockImplementation(() => new Promise(() => {}));
    const w = mountView(limitsOf({ maxBytes: null, maxFiles: 1, usedBytes: 0, usedFiles: 0 }));
    await flushPromises();
    await pick(w, 'flaky.png');
    await pick(w, 'other.png'); // on its way: the one image the quota allows
    await row(w, 'flaky.png').get('button').trigger('click');
    await flushPromises();
    expect(upload).toHaveBeenCalledTimes(2);
    expect(row(w, 'flaky.png').get('.upload__error').text()).toMatch(/quota of 1 image is used up/);
    expect(buttons(w, 'flaky.png')).toEqual(['Dismiss flaky.png']);
    w.unmount();
  });
});

describe('UploadView when the token runs out', () => {
  it('an upload refused UNAUTHENTICATED ends the session and offers Retry; queued files wait for the next token', async () => {
    setToken('expired-soon');
    const session = createSession();
    upload.mockRejectedValueOnce(
      new UploadError('The bearer token is invalid or expired', 'UNAUTHENTICATED', 401),
    );
    upload.mockResolvedValue(uploaded);
    const w = mountView(undefined, undefined, session);
    await pick(w, 'a.png');
    expect(session.ended.value).toBe(true);
    expect(buttons(w, 'a.png')).toEqual(['Retry a.png']);

    await pick(w, 'b.png'); // picked while the sign-in form shows: it waits
    expect(upload).toHaveBeenCalledTimes(1);
    expect(row(w, 'b.png').attributes('data-status')).toBe('queued');

    setToken('renewed');
    session.resumed();
    await flushPromises();
    expect(upload).toHaveBeenCalledTimes(2);
    expect(row(w, 'b.png').attributes('data-status')).toBe('done');
    await row(w, 'a.png').get('button').trigger('click');
    await flushPromises();
    expect(row(w, 'a.png').attributes('data-status')).toBe('done');
    w.unmount();
  });
});

describe('UploadView and the presets the gateway has', () => {
  const shown = (w: ReturnType<typeof mountView>, name: string) => {
    const c = row(w, name).getComponent(SmartImage);
    const { signedUrl, proxyUrl } = c.props('image') as SmartImageSource;
    return { url: signedUrl.url, srcset: signedUrl.srcset, proxyUrl, preset: c.props('preset') };
  };

  it('asks for the new tile in the `thumb` preset when the gateway has it (the presets asked once)', async () => {
    let presetsAsked = 0;
    upload.mockResolvedValue(uploaded);
    const w = mountView(undefined, undefined, undefined, () => {
      presetsAsked++;
      return ['thumb', 'medium'];
    });
    await pick(w, 'a.png', 'b.png');
    await flushPromises();
    expect(upload.mock.calls.map((c) => c[2]?.thumb)).toEqual([true, true]);
    expect(presetsAsked).toBe(1);
    expect(shown(w, 'a.png')).toEqual({
      url: uploaded.thumb!.url,
      srcset: uploaded.thumbSrcset,
      proxyUrl: uploaded.thumbProxyUrl,
      preset: 'thumb',
    });
    w.unmount();
  });

  it.each([
    ['of other names', ['hero']],
    ['(IMAGE_TRANSFORMS=off)', []],
  ])('without `thumb` %s: asks for the original’s URL, and the row shows it', async (_, names) => {
    const original = galleryImage(1, false);
    upload.mockResolvedValue(original);
    const w = mountView(undefined, undefined, undefined, names);
    await pick(w, 'photo.png');
    await flushPromises();
    expect(upload.mock.calls[0]![2]).toMatchObject({ thumb: false });
    expect(row(w, 'photo.png').attributes('data-status')).toBe('done');
    expect(shown(w, 'photo.png')).toEqual({
      url: original.original!.url,
      srcset: null,
      proxyUrl: original.originalProxyUrl,
      preset: undefined,
    });
    w.unmount();
  });

  it('when the presets cannot be asked, the file fails with Retry (not its fault), and a retry uploads it', async () => {
    let answer: readonly string[] | 'network' = 'network';
    upload.mockResolvedValue(uploaded);
    const w = mountView(undefined, undefined, undefined, () => answer);
    await pick(w, 'photo.png');
    await flushPromises();
    expect(upload).not.toHaveBeenCalled();
    expect(row(w, 'photo.png').attributes('data-status')).toBe('failed');
    expect(buttons(w, 'photo.png')).toEqual(['Retry photo.png']);
    answer = ['thumb'];
    await row(w, 'photo.png').get('button').trigger('click');
    await flushPromises();
    expect(upload).toHaveBeenCalledTimes(1);
    expect(row(w, 'photo.png').attributes('data-status')).toBe('done');
    w.unmount();
  });
});
