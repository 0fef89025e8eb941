import { addTypenameToDocument } from '@apollo/client/utilities';
import { print } from 'graphql';
import { type GalleryImageFragment, UploadImageDocument } from '../gql/graphql';
import { authHeaders } from './auth';

export class UploadError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'UploadError';
  }
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
  options: { uri?: string; signal?: AbortSignal } = {},
): Promise<GalleryImageFragment> {
  return new Promise((resolve, reject) => {
    const body = new FormData();
    body.append('operations', JSON.stringify({ query: QUERY, variables: { file: null } }));
    body.append('map', JSON.stringify({ 0: ['variables.file'] }));
    body.append('0', file, file.name);

    const xhr = new XMLHttpRequest();
    xhr.open('POST', options.uri ?? '/graphql');
    xhr.setRequestHeader('apollo-require-preflight', 'true');
    xhr.setRequestHeader('accept', 'application/graphql-response+json, application/json');
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
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
          first?.extensions?.code ?? (xhr.status === 413 ? 'PAYLOAD_TOO_LARGE' : 'INTERNAL_SERVER_ERROR'),
        ),
      );
    };
    xhr.onerror = () => reject(new UploadError('Network error while uploading', 'NETWORK_ERROR'));
    xhr.onabort = () => reject(new UploadError('Upload cancelled', 'ABORTED'));
    options.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}
