import { createSignet } from '@signet/vue';
import { DefaultApolloClient } from '@vue/apollo-composable';
import { createApp } from 'vue';
import App from './App.vue';
import { LIVE_URLS } from './composables/useImagePresets';
import { createApolloClient } from './lib/apollo';
import { authHeaders } from './lib/auth';
import { createSession, SESSION } from './lib/session';
import '@signet/vue/style.css';
import './styles.css';

// Composition root: every dependency is built here once and provided to the components.
const session = createSession();
const client = createApolloClient('/graphql', undefined, session.tokenRefused);
// SmartImage's live URLs, one shared stream per preset. The header's live badge shows the tiles'
// stream: the `thumb` preset's, or the originals' on a gateway without it (useTileLinkState).
const signet = createSignet({ client, uri: '/graphql', headers: authHeaders });

createApp(App)
  .provide(DefaultApolloClient, client)
  .provide(SESSION, session)
  .provide(LIVE_URLS, signet.urls)
  .use(signet)
  .mount('#app');
