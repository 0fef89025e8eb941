import { addTypenameToDocument } from '@apollo/client/utilities';
import { print } from 'graphql';
import { type GalleryImageFragment, UploadImageDocument } from '../gql/graphql';
import { authHeaders } from './auth';

/**
 * Failures the same upload may get past when tried again: the network, a gateway (or something in
 * front of it) that is overloaded, away, failing or out of patience with a slow body, and a token
 * that is no longer accepted (the app asks for a new one: lib/session.ts). Everything else is
 * about the file or the viewer (PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, BAD_USER_INPUT,
 * FORBIDDEN): it fails the same way every time, so no Retry is offered for it.
 */
const RETRYABLE = new Set([
  'NETWORK_ERROR',
  'REQUEST_TIMEOUT',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'INTERNAL_SERVER_ERROR',
  'UNAUTHENTICATED',
]);

export class UploadError extends Error {
  constructor(
    message: string,
    readonly code: string,
    /** The HTTP status of the answer; 0 when there was none (a network error). */
    readonly status = 0,
  ) {
    super(message);
    this.name = 'UploadError';
  }

  /** Whether trying the same file again can succeed (see RETRYABLE). */
  get retryable(): boolean {
    return RETRYABLE.has(this.code) || this.status >= 500;
  }
}

/** The code of an answer that carries none (not JSON: a proxy's error page), from its status. */
function codeOfStatus(status: number): string {
  if (status === 413) return 'PAYLOAD_TOO_LARGE';
  // A proxy in front that gave up waiting for a slow upload's body: another try may get through.
  if (status === 408) return 'REQUEST_TIMEOUT';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 502 || status === 503 || status === 504) return 'SERVICE_UNAVAILABLE';
  return status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST';
}

// With __typename, as Apollo would ask, so the result can be written into its cache.
const QUERY = print(addTypenameToDocument(UploadImageDocument));

/**
 * `uploadImage(file)` as a GraphQL multipart request (operations, map, file). XMLHttpRequest
 * rather than fetch: only it reports upload progress. The preflight header satisfies the
 * gateway's CSRF prevention, which refuses simple cross-site form posts.
 */
export function uploadImage(
  file: File,
  onProgress: (fraction: number) => void,
  options: { uri?: string; signal?: AbortSignal; token?: string | null; thumb?: boolean } = {},
): Promise<GalleryImageFragment> {
  return new Promise((resolve, reject) => {
    const body = new FormData();
    // `thumb`: whether the gateway has the `thumb` preset (lib/presets.ts); else the original's URL.
    const variables = { file: null, thumb: options.thumb ?? true };
    body.append('operations', JSON.stringify({ query: QUERY, variables }));
    body.append('map', JSON.stringify({ 0: ['variables.file'] }));
    body.append('0', file, file.name);

    const xhr = new XMLHttpRequest();
    xhr.open('POST', options.uri ?? '/graphql');
    xhr.setRequestHeader('apollo-require-preflight', 'true');
    xhr.setRequestHeader('accept', 'application/graphql-response+json, application/json');
    // The stored token unless the caller names the one to send (undefined takes the default).
    for (const [name, value] of Object.entries(authHeaders(options.token))) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let result: { data?: { uploadImage?: GalleryImageFragment } | null; errors?: unknown[] } | null = null;
      try {
        result = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: an HTTP error from something in front of the gateway
      }
      const image = result?.data?.uploadImage;
      if (image) {
        onProgress(1);
        resolve(image);
        return;
      }
      const first = result?.errors?.[0] as { message?: string; extensions?: { code?: string } } | undefined;
      reject(
        new UploadError(
          first?.message ?? `Upload failed (HTTP ${xhr.status})`,
          first?.extensions?.code ?? codeOfStatus(xhr.status),
          xhr.status,
        ),
      );
    };
    xhr.onerror = () => reject(new UploadError('Network error while uploading', 'NETWORK_ERROR'));
    xhr.onabort = () => reject(new UploadError('Upload cancelled', 'ABORTED'));
    options.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}
