import type { Harness } from './harness.js';
import { postGraphql, type RawGql } from './raw-graphql.js';

export const UPLOAD_MUTATION = /* GraphQL */ `
  mutation Upload($file: File!) {
    uploadImage(file: $file) {
      id key contentType byteSize width height createdAt
      proxyUrl
      signedUrl { url expiresAt cached }
    }
  }
`;

export interface UploadedImage {
  id: string;
  key: string;
  contentType: string;
  byteSize: number;
  width: number | null;
  height: number | null;
  createdAt: string;
  proxyUrl: string;
  signedUrl: { url: string; expiresAt: string; cached: boolean };
}

export interface MultipartResult {
  status: number;
  data: { uploadImage: UploadedImage } | null;
  errors: { message: string; extensions?: { code?: string; [k: string]: unknown } }[] | undefined;
}

export interface UploadOptions {
  /** File name the client claims (default `upload.bin`). */
  name?: string;
  /** Content type the client claims (default application/octet-stream). */
  type?: string;
  /** A bearer token; null sends none (default: a token for alice). */
  token?: string | null;
  /** Leave out yoga's CSRF header. */
  noCsrf?: boolean;
  /** More file parts mapped to the same variable (spec-conformant, but more than one file). */
  extraFiles?: number;
  /** Another mutation document taking `$file` (default UPLOAD_MUTATION). */
  query?: string;
}

/**
 * A real GraphQL multipart request (github.com/jaydenseric/graphql-multipart-request-spec):
 * `operations`, then `map`, then the file part, sent with fetch + FormData.
 */
export async function uploadFile(
  h: Harness,
  bytes: Buffer,
  opts: UploadOptions = {},
): Promise<MultipartResult> {
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({ query: opts.query ?? UPLOAD_MUTATION, variables: { file: null } }),
  );
  const extra = opts.extraFiles ?? 0;
  const map: Record<string, string[]> = { 0: ['variables.file'] };
  for (let i = 1; i <= extra; i++) map[String(i)] = ['variables.file'];
  form.append('map', JSON.stringify(map));
  for (let i = 0; i <= extra; i++) {
    form.append(
      String(i),
      new Blob([new Uint8Array(bytes)], { type: opts.type ?? 'application/octet-stream' }),
      opts.name ?? 'upload.bin',
    );
  }
  const token = opts.token === undefined ? await h.token('alice') : opts.token;
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: {
      ...(opts.noCsrf ? {} : { 'x-graphql-yoga-csrf': '1' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: form,
  });
  const text = await res.text();
  let body: { data?: MultipartResult['data']; errors?: MultipartResult['errors'] };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`non-JSON answer ${res.status}: ${text.slice(0, 200)}`);
  }
  return { status: res.status, data: body.data ?? null, errors: body.errors };
}

/** A multipart upload of `query` as given (the web app's own document, or another), sent as the web app sends it. */
export async function uploadWithQuery(h: Harness, query: string, bytes: Buffer): Promise<RawGql> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query, variables: { file: null } }));
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'a.png');
  return postGraphql(h, form, {
    'apollo-require-preflight': 'true',
    authorization: `Bearer ${await h.token('alice')}`,
  });
}
