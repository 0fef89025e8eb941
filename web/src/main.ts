import { DefaultApolloClient } from '@vue/apollo-composable';
import { createApp } from 'vue';
import App from './App.vue';
import { defaultBackoffMs, SMART_IMAGE_DEPS } from './components/smart-image-deps';
import { createUrlRefresh, URL_REFRESH } from './composables/useUrlRefresh';
import { createApolloClient, urlTransport } from './lib/apollo';
import { createVisibility } from './lib/visibility';
import './styles.css';

// Composition root: every dependency is built here once and provided to the components.
const client = createApolloClient();
const urls = createUrlRefresh(urlTransport(client));

createApp(App)
  .provide(DefaultApolloClient, client)
  .provide(URL_REFRESH, urls)
  .provide(SMART_IMAGE_DEPS, {
    urls,
    observe: createVisibility(),
    now: () => Date.now(),
    backoffMs: defaultBackoffMs,
  })
  .mount('#app');
