import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

// DELETED_ROW_RETENTION_DAYS: how long a deleted image's row is kept before the purge removes it
// (docs/architecture.md, "Deleting an image").
describe('DELETED_ROW_RETENTION_DAYS', () => {
  it('defaults to 30 days and takes 0 (purge at the next run)', () => {
    expect(loadConfig({}).deletedRowRetentionDays).toBe(30);
    expect(loadConfig({ DELETED_ROW_RETENTION_DAYS: '0' }).deletedRowRetentionDays).toBe(0);
    expect(loadConfig({ DELETED_ROW_RETENTION_DAYS: '365' }).deletedRowRetentionDays).toBe(365);
  });

  it('refuses anything but a whole number of days from 0 to 36500, naming the variable', () => {
    for (const bad of ['-1', 'abc', '1.5', '36501', '30d']) {
      let err: unknown;
      try {
        loadConfig({ DELETED_ROW_RETENTION_DAYS: bad });
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable, bad).toBe('DELETED_ROW_RETENTION_DAYS');
    }
  });
});
