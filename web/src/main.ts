import { createSignet } from '@signet/vue';
import { DefaultApolloClient } from '@vue/apollo-composable';
import { createApp } from 'vue';
import App from './App.vue';
import { createApolloClient } from './lib/apollo';
import { authHeaders } from './lib/auth';
import { TILE_PRESET } from './lib/presets';
import { createSession, SESSION } from './lib/session';
import '@signet/vue/style.css';
import './styles.css';

// Composition root: every dependency is built here once and provided to the components.
const session = createSession();
const client = createApolloClient('/graphql', undefined, session.tokenRefused);

createApp(App)
  .provide(DefaultApolloClient, client)
  .provide(SESSION, session)
  // SmartImage's live URLs, one shared stream per preset; the tiles' stream is the one the
  // header's live badge shows (useUrlRefresh).
  .use(createSignet({ client, uri: '/graphql', headers: authHeaders, livePreset: TILE_PRESET }))
  .mount('#app');
