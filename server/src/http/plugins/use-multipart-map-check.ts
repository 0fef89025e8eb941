import type { Plugin } from 'graphql-yoga';
import { type AppError, badInput } from '../../errors/index.js';

function refuse(message: string): AppError {
  return badInput(`Malformed multipart request: ${message}`, undefined, { requestLevel: true });
}

/**
 * A field that must be JSON, parsed. yoga answers a field that is missing or not JSON with a
 * codeless error that would go out as 200: refused here as BAD_USER_INPUT, 400, like a malformed
 * JSON body (docs/architecture.md, "Errors").
 */
function json(raw: unknown, name: string): unknown {
  if (typeof raw !== 'string') throw refuse(`the field "${name}" is missing or not a text field`);
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw refuse(`"${name}" is not valid JSON (${String((err as Error).message).slice(0, 80)})`);
  }
}

/** `operations` must be one request object: yoga writes the files into it (`0` is a TypeError). */
export function checkUploadOperations(raw: unknown): void {
  const ops = json(raw, 'operations');
  if (typeof ops !== 'object' || ops === null || Array.isArray(ops)) {
    throw refuse('"operations" must be a JSON object (one GraphQL request)');
  }
}

/**
 * The `map` field of a GraphQL multipart request must be an object from file field names (parts
 * that were sent) to arrays of paths. yoga walks it without checking (`{"0": [42]}` is a
 * TypeError, an unexpected error), so it is checked first. A map that is missing is yoga's (no
 * file is attached then). One file is named at one path only: yoga would set it at each, and each
 * `uploadImage` given it would store it again (docs/architecture.md, "The upload pipeline").
 */
export function checkUploadMap(raw: unknown, partIsFile: (name: string) => boolean): void {
  if (raw === null) return;
  const map = json(raw, 'map');
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw refuse('"map" must be an object of file field → array of paths');
  }
  for (const [field, paths] of Object.entries(map)) {
    if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === 'string')) {
      throw refuse(`"map" entry "${field.slice(0, 40)}" must be a non-empty array of paths`);
    }
    if (!partIsFile(field))
      throw refuse(`"map" names the file field "${field.slice(0, 40)}", which was not sent`);
    if (paths.length > 1) {
      throw refuse(
        `"map" names the file "${field.slice(0, 40)}" at ${paths.length} paths; a file may be used once`,
      );
    }
  }
}

/**
 * The longest file name a part may claim: what file systems allow for one name (255 bytes on
 * ext4 and APFS, 255 UTF-16 units on NTFS), so no browser sends longer.
 */
export const MAX_FILE_NAME_LENGTH = 255;

/**
 * The file name a file part claims. Signet never uses it (the content decides the type, the
 * server the key), but the parser is lenient — an unterminated quoted `filename="…` runs to the
 * end of the header line — so a name longer than any real one, or with control characters,
 * marks a malformed part, refused rather than accepted as an upload.
 */
export function checkUploadFileName(field: string | undefined, fileName: string | undefined): void {
  // A broken Content-Disposition can leave the parser with neither a field name nor a file name.
  const label = `the file part "${String(field ?? '').slice(0, 40)}"`;
  if (typeof field !== 'string' || typeof fileName !== 'string') {
    throw refuse(`${label} has no readable name`);
  }
  if (fileName.length > MAX_FILE_NAME_LENGTH) {
    throw refuse(`${label} has a file name of more than ${MAX_FILE_NAME_LENGTH} characters`);
  }
  for (let i = 0; i < fileName.length; i++) {
    const c = fileName.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) throw refuse(`${label} has a control character in its file name`);
  }
}

/**
 * Checks `operations`, `map` and the file parts' names before yoga reads them. Must come before useUploadLimits in the plugin list: that plugin wraps this parser, so the form
 * data here is the copy it already read under its limits (whatwg-node caches it).
 */
export function useMultipartMapCheck(): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      if (request.method !== 'POST' || !requestParser) return;
      if (!/^multipart\/form-data\b/i.test(request.headers.get('content-type') ?? '')) return;
      const parse = requestParser;
      setRequestParser(async (req) => {
        const form = await req.formData();
        for (const [field, value] of form.entries()) {
          if (typeof value !== 'string') checkUploadFileName(field, value.name);
        }
        checkUploadOperations(form.get('operations'));
        checkUploadMap(form.get('map'), (name) => {
          const part = form.get(name);
          return part !== null && typeof part !== 'string';
        });
        return parse(req);
      });
    },
  };
}
