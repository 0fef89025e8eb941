import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/**
 * A one-line list setting (`    ports: [...]`) of a docker-compose service, inside the brackets:
 * the service's block runs from `  <name>:` to the next service at the same indentation.
 */
function composeList(compose: string, service: string, setting: string): string | undefined {
  const block = new RegExp(`^  ${service}:\\n((?:    .*\\n|\\s*\\n)*)`, 'm').exec(compose)?.[1];
  return new RegExp(`^ {4}${setting}: \\[(.*)\\]$`, 'm').exec(block ?? '')?.[1];
}

describe('what operators read and run beside the code', () => {
  it('docs/operations.md lists every metric server/src/metrics.ts registers', () => {
    const registered = [...read('server/src/metrics.ts').matchAll(/name: '(signet_[a-z0-9_]+)'/g)].map(
      (m) => m[1]!,
    );
    expect(registered.length).toBeGreaterThan(20);
    const doc = read('docs/operations.md');
    // A table cell starts the name with a backtick; labels may follow it (`name{label}`).
    const missing = registered.filter((name) => !new RegExp(`\`${name}[\`{]`).test(doc));
    expect(missing).toEqual([]);
  });

  it('docker-compose.yml publishes Redis and PostgreSQL (no password, trust auth) on loopback only', () => {
    const compose = read('docker-compose.yml');
    for (const service of ['redis', 'postgres']) {
      const ports = composeList(compose, service, 'ports');
      expect(ports, service).toBeDefined();
      for (const mapping of ports!.split(',')) {
        expect(mapping.trim().replace(/"/g, ''), service).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
      }
    }
  });

  it("docker-compose.yml gives the gateway and the worker one DATA_DIR volume (the local driver's bucket)", () => {
    const compose = read('docker-compose.yml');
    const dataDir = /^ENV [\s\S]*?DATA_DIR=(\S+)/m.exec(read('Dockerfile'))?.[1];
    expect(dataDir).toBe('/app/data');
    const volumes = (service: string) => composeList(compose, service, 'volumes')?.replace(/"/g, '');
    expect(volumes('gateway')).toBe(`signetdata:${dataDir}`);
    expect(volumes('worker')).toBe(`signetdata:${dataDir}`);
    expect(compose).toMatch(/^volumes:\n(?: {2}\w+:\n)*? {2}signetdata:$/m);
  });
  it("the image's build step runs an npm script whose files the Dockerfile copies", () => {
    const dockerfile = read('Dockerfile');
    const scripts = JSON.parse(read('package.json')).scripts as Record<string, string>;
    // What the build stage copies, and the npm scripts it runs.
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '));
    const run = [...dockerfile.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!);
    expect(run.length).toBeGreaterThan(0);
    for (const name of run) {
      const script = scripts[name];
      expect(script, name).toBeDefined();
      // A file of the repository a script runs (`node scripts/x.mjs`, `tsx server/...`) must be copied.
      for (const [, file] of script!.matchAll(/(?:node|tsx) ((?:[\w.-]+\/)+[\w.-]+)/g)) {
        expect(
          copied.some((c) => file === c || file!.startsWith(`${c.replace(/\/$/, '')}/`)),
          `${name} runs ${file}`,
        ).toBe(true);
      }
    }
  });
});
