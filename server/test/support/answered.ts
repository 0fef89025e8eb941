import type { UrlService } from '../../src/urls/url-service.js';

/**
 * `resolveMany` as the next request sees it: a cold batch's write-back (and event) is sent once
 * the tick's answers are written (docs/architecture.md, "The hot path"), and a client's next
 * request always arrives after that. Unit tests that call the service back to back wait the same
 * tick.
 */
export function answered(urls: UrlService): UrlService {
  const resolveMany = urls.resolveMany.bind(urls);
  urls.resolveMany = async (requests, remember) => {
    const out = await resolveMany(requests, remember);
    await new Promise<void>((resolve) => setImmediate(resolve));
    return out;
  };
  return urls;
}
