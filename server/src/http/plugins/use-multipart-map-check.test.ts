import { describe, expect, it } from 'vitest';
import { AppError } from '../../errors/index.js';
import { checkUploadMap, checkUploadOperations } from './use-multipart-map-check.js';

const sent = (name: string) => name === '0';

describe('checkUploadMap', () => {
  it('accepts a spec-conformant map, and leaves a missing or non-JSON map to yoga', () => {
    expect(() => checkUploadMap('{"0":["variables.file"]}', sent)).not.toThrow();
    expect(() => checkUploadMap(null, sent)).not.toThrow();
    expect(() => checkUploadMap('{not json', sent)).not.toThrow();
  });

  it.each([
    ['[["variables.file"]]'],
    ['"variables.file"'],
    ['null'],
    ['{"0":[42]}'],
    ['{"0":"variables.file"}'],
    ['{"0":[]}'],
    ['{"0":null}'],
    ['{"5":["variables.file"]}'],
  ])('refuses %s as BAD_USER_INPUT', (map) => {
    let err: unknown;
    try {
      checkUploadMap(map, sent);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('BAD_USER_INPUT');
  });
});

describe('checkUploadOperations', () => {
  it('takes one request object; other JSON is BAD_USER_INPUT; non-JSON is left to yoga', () => {
    expect(() => checkUploadOperations('{"query":"{ viewer { id } }"}')).not.toThrow();
    expect(() => checkUploadOperations('not json')).not.toThrow();
    for (const ops of ['0', '"x"', 'null', 'true', '[{"query":"{ viewer { id } }"}]']) {
      expect(() => checkUploadOperations(ops), ops).toThrow(AppError);
    }
  });
});
