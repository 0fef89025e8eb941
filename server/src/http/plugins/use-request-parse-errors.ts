import type { Plugin } from 'graphql-yoga';
import { badInput, unsupportedMediaType } from '../../errors/index.js';

/** What yoga's parsers read of a POST (graphql-yoga's plugins/request-parser). */
const READ_TYPES =
  'application/json, application/graphql+json, application/graphql, application/x-www-form-urlencoded or multipart/form-data';

/**
 * Request errors yoga would answer outside the error table:
 * - a POST whose content type no parser reads gets yoga's bare 415 with no body; here it is
 *   UNSUPPORTED_MEDIA_TYPE (415) with the table's JSON, naming the types that are read;
 * - yoga JSON-parses the `variables` and `extensions` of a GET query string (and of a form body)
 *   without catching: a client's broken JSON would surface as an unexpected error (500-class
 *   INTERNAL_SERVER_ERROR, logged as our bug). It is the client's input: BAD_USER_INPUT, 400.
 */
export function useRequestParseErrors(): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      if (!requestParser) {
        if (request.method !== 'POST') return;
        // The header is the client's: echoed short, as every refusal quotes its input.
        const type = (request.headers.get('content-type') ?? '').slice(0, 100);
        throw unsupportedMediaType(
          `/graphql reads a POST body sent as ${READ_TYPES}, not ${type ? `'${type}'` : 'one without a content type'}`,
          { requestLevel: true },
        );
      }
      const parse = requestParser;
      setRequestParser(async (req) => {
        try {
          return await parse(req);
        } catch (err) {
          if (!(err instanceof SyntaxError)) throw err;
          throw badInput(`Request parameters are not valid JSON: ${err.message.slice(0, 200)}`, undefined, {
            requestLevel: true,
          });
        }
      });
    },
  };
}
