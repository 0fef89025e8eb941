import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A throwaway CA and a server certificate it signed, as PEM files. */
export interface TlsFiles {
  /** The CA's certificate: what a client trusts (NODE_EXTRA_CA_CERTS for a child process). */
  ca: string;
  /** The server's certificate, for 127.0.0.1 and localhost, and its key. */
  cert: string;
  key: string;
}

/**
 * Makes a CA and a server certificate (P-256, valid a day) in `dir` with the openssl command. A
 * missing openssl fails the test that needs it, naming it.
 */
export async function makeTlsFiles(dir: string): Promise<TlsFiles> {
  const f = (name: string) => path.join(dir, name);
  const openssl = async (args: string[]) => {
    try {
      await run('openssl', args);
    } catch (err) {
      throw new Error(`openssl is needed to make the test's certificates: ${(err as Error).message}`);
    }
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-days',
    '1',
    '-subj',
    '/CN=signet test CA',
  ]);
  await openssl([
    'req',
    ...ec,
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
    '-subj',
    '/CN=localhost',
  ]);
  await writeFile(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl([
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    f('server.ext'),
    '-out',
    f('server.crt'),
  ]);
  return { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}
