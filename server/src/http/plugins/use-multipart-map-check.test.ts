import { describe, expect, it } from 'vitest';
import { AppError } from '../../errors/index.js';
import {
  checkUploadFileName,
  checkUploadMap,
  checkUploadOperations,
  MAX_FILE_NAME_LENGTH,
} from './use-multipart-map-check.js';

const sent = (name: string) => name === '0';

describe('checkUploadMap', () => {
  it('accepts a spec-conformant map, and leaves a missing map to yoga', () => {
    expect(() => checkUploadMap('{"0":["variables.file"]}', sent)).not.toThrow();
    expect(() => checkUploadMap(null, sent)).not.toThrow();
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
    ['{not json'],
    ['{"0":["variables.file","variables.other"]}'],
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
  it('takes one request object; other JSON, non-JSON or no field at all is BAD_USER_INPUT', () => {
    expect(() => checkUploadOperations('{"query":"{ viewer { id } }"}')).not.toThrow();
    for (const ops of ['not json', null, '0', '"x"', 'null', 'true', '[{"query":"{ viewer { id } }"}]']) {
      expect(() => checkUploadOperations(ops), String(ops)).toThrow(AppError);
    }
  });
});

describe('checkUploadFileName', () => {
  it('refuses a part the parser found no name for (a broken Content-Disposition)', () => {
    expect(() => checkUploadFileName('0', undefined)).toThrow(AppError);
    expect(() => checkUploadFileName(undefined, 'a.png')).toThrow(AppError);
  });

  const codeOf = (name: string) => {
    try {
      checkUploadFileName('0', name);
    } catch (e) {
      return e instanceof AppError ? e.code : String(e);
    }
    return undefined;
  };

  it('accepts ordinary names, non-ASCII ones, and names up to the limit', () => {
    for (const name of ['photo.png', 'Ünïcødé 照片.jpg', '', 'a'.repeat(MAX_FILE_NAME_LENGTH)]) {
      expect(codeOf(name), name).toBeUndefined();
    }
  });

  it('refuses what only a malformed part header yields: 8 KB (an unterminated quote), control characters', () => {
    for (const name of [
      'a'.repeat(8192),
      'a'.repeat(MAX_FILE_NAME_LENGTH + 1),
      'a\r\nContent-Type: x',
      'a\0b',
      'a\x7f',
    ]) {
      expect(codeOf(name), JSON.stringify(name.slice(0, 20))).toBe('BAD_USER_INPUT');
    }
  });
});
