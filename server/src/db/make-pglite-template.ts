// `npm run build` (server): the embedded database's cluster template, once per PGlite version
// (pglite-init.ts, buildPgliteTemplate). A first start from the build then copies it instead of
// running initdb. Templates of other PGlite versions (builds before an upgrade) are removed.
import { buildPgliteTemplate, defaultPgliteTemplate, removeOtherTemplates } from './pglite-init.js';

const out = defaultPgliteTemplate();
const made = await buildPgliteTemplate(out);
const removed = await removeOtherTemplates(out);
process.stdout.write(
  `${made ? 'made' : 'kept'} the embedded database template ${out}${removed.length ? ` (removed ${removed.join(', ')})` : ''}\n`,
);
