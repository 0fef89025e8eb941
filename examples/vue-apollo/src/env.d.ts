/// <reference types="vite/client" />

declare module '*.vue' {
  import type { DefineComponent } from 'vue';

  const component: DefineComponent<object, object, unknown>;
  export default component;
}

interface ImportMetaEnv {
  /** The gateway's GraphQL endpoint (default: same origin, /graphql). */
  readonly VITE_GRAPHQL_URL?: string;
}
