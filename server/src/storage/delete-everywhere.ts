import { type Storage, StorageError, VariantsLeftError } from './storage.js';

export interface DeleteEverywhereOptions {
  /**
   * Whether the orphan sweep of every region removes `key` once no live row names it: an
   * upload-shaped key (images/upload.ts, `isUploadKey`). An imported object's key is never swept.
   */
  swept: (key: string) => boolean;
}

/**
 * Deletes `key` from every region's bucket (docs/operations.md, "Several regions"). All of them
 * failing changes nothing: the first failure is thrown, and the delete can be retried as a whole.
 *
 * Some of them failing after others deleted their copy: for an upload-shaped key whose buckets
 * only failed for the moment (no answer, a 5xx, 408 or 429), the delete has happened: the bytes
 * are gone where a bucket answered, and keeping the row would list an image that answers 404
 * there (or nowhere, for an upload not yet replicated). That is reported as what the delete left
 * behind (`VariantsLeftError`), so the row is deleted and each such region's orphan sweep removes
 * its copy once its bucket answers. Otherwise the failure is thrown and the row stays, for the
 * delete to be retried: an imported object's copy would never be swept, nor would one a bucket
 * refuses for good (a wrong key, a missing bucket), and a purged row would let `signet import`
 * bring it back.
 */
export async function deleteEverywhere(
  regions: ReadonlyMap<string, Pick<Storage, 'delete'>>,
  key: string,
  o: DeleteEverywhereOptions,
): Promise<void> {
  const names = [...regions.keys()];
  const outcomes = await Promise.allSettled(names.map((name) => regions.get(name)!.delete(key)));
  const failed: { region: string; err: unknown }[] = [];
  outcomes.forEach((r, i) => {
    // A bucket that deleted the object but not its variants deleted the object.
    if (r.status === 'rejected' && !(r.reason instanceof VariantsLeftError))
      failed.push({ region: names[i]!, err: r.reason });
  });
  if (
    failed.length > 0 &&
    (failed.length === names.length || !o.swept(key) || !failed.every((f) => passing(f.err)))
  )
    throw failed[0]!.err;
  const leftovers = outcomes.filter(
    (r): r is PromiseRejectedResult => r.status === 'rejected' && r.reason instanceof VariantsLeftError,
  );
  if (failed.length === 0 && leftovers.length === 0) return;
  const what = [
    ...failed.map((f) => `the object in region ${f.region} (${(f.err as Error)?.message ?? String(f.err)})`),
    ...leftovers.map((l) => (l.reason as VariantsLeftError).leftover),
  ].join('; ');
  throw new VariantsLeftError(key, what, { cause: failed[0]?.err ?? leftovers[0]?.reason });
}

/** A failure that says nothing lasting about the bucket: no answer, a timeout, a 5xx, 408 or 429. */
function passing(err: unknown): boolean {
  if (!(err instanceof StorageError)) return false;
  if (err.kind === 'timeout') return true;
  if (err.kind !== 'unavailable') return false;
  const s = err.status;
  return s === undefined || s >= 500 || s === 408 || s === 429;
}
