import { type Storage, VariantsLeftError } from './storage.js';

/**
 * Deletes `key` from every region's bucket (docs/operations.md, "Several regions"). All of them
 * failing changes nothing: the first failure is thrown, and the delete can be retried as a whole.
 * Some of them failing after others deleted their copy is a delete that has happened: the bytes
 * are gone where a bucket answered, and keeping the row would list an image that answers 404 there
 * (or none anywhere, for an upload not yet replicated). That is reported as what the delete left
 * behind (`VariantsLeftError`), so the row is deleted and each unreachable region's orphan sweep
 * removes its copy once its bucket answers (it keeps only objects a live row names).
 */
export async function deleteEverywhere(regions: ReadonlyMap<string, Pick<Storage, 'delete'>>, key: string) {
  const names = [...regions.keys()];
  const outcomes = await Promise.allSettled(names.map((name) => regions.get(name)!.delete(key)));
  const failed: { region: string; err: unknown }[] = [];
  outcomes.forEach((o, i) => {
    // A bucket that deleted the object but not its variants deleted the object.
    if (o.status === 'rejected' && !(o.reason instanceof VariantsLeftError))
      failed.push({ region: names[i]!, err: o.reason });
  });
  if (failed.length === names.length) throw failed[0]!.err;
  const leftovers = outcomes.filter(
    (o): o is PromiseRejectedResult => o.status === 'rejected' && o.reason instanceof VariantsLeftError,
  );
  if (failed.length === 0 && leftovers.length === 0) return;
  const what = [
    ...failed.map((f) => `the object in region ${f.region} (${(f.err as Error)?.message ?? String(f.err)})`),
    ...leftovers.map((l) => (l.reason as VariantsLeftError).leftover),
  ].join('; ');
  throw new VariantsLeftError(key, what, { cause: failed[0]?.err ?? leftovers[0]?.reason });
}
