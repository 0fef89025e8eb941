import { DefaultApolloClient } from '@vue/apollo-composable';
import { createApp } from 'vue';
import App from './App.vue';
import { defaultBackoffMs, SMART_IMAGE_DEPS } from './components/smart-image-deps';
import { createUrlRefresh, URL_REFRESH, type UrlRefresh } from './composables/useUrlRefresh';
import { createApolloClient, urlTransport } from './lib/apollo';
import { TILE_PRESET } from './lib/presets';
import { createVisibility } from './lib/visibility';
import './styles.css';

// Composition root: every dependency is built here once and provided to the components.
const client = createApolloClient();
const live = new Map<string, UrlRefresh>();
/** One shared subscription per preset ('' = the originals), made when first used. */
function urlsFor(preset = ''): UrlRefresh {
  let urls = live.get(preset);
  if (!urls) {
    urls = createUrlRefresh(urlTransport(client, preset === '' ? undefined : preset));
    live.set(preset, urls);
  }
  return urls;
}

createApp(App)
  .provide(DefaultApolloClient, client)
  // The tiles' stream is the one the header's live badge shows.
  .provide(URL_REFRESH, urlsFor(TILE_PRESET))
  .provide(SMART_IMAGE_DEPS, {
    urls: urlsFor(),
    variantUrls: urlsFor,
    observe: createVisibility(),
    now: () => Date.now(),
    backoffMs: defaultBackoffMs,
  })
  .mount('#app');
