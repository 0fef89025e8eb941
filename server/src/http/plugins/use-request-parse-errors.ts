import type { Plugin } from 'graphql-yoga';
import { badInput } from '../../errors/index.js';

/**
 * yoga JSON-parses the `variables` and `extensions` of a GET query string (and of a form body)
 * without catching: a client's broken JSON would surface as an unexpected error (500-class
 * INTERNAL_SERVER_ERROR, logged as our bug). It is the client's input: BAD_USER_INPUT, 400.
 */
export function useRequestParseErrors(): Plugin {
  return {
    onRequestParse({ requestParser, setRequestParser }) {
      if (!requestParser) return;
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
