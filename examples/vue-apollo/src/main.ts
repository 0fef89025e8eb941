import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client/core';
import { createSignet } from '@signet/vue'; // + Signet
import { DefaultApolloClient } from '@vue/apollo-composable';
import { createApp } from 'vue';
import App from './App.vue';
import '@signet/vue/style.css'; // + Signet

// The app's own Apollo Client, as it was before Signet: plain HTTP, its own cache. Where the
// gateway is: `?api=<url>` (how the Chromium test points a built copy at its gateway), else
// VITE_GRAPHQL_URL at build time, else /graphql on this origin.
const uri = new URLSearchParams(location.search).get('api') ?? import.meta.env.VITE_GRAPHQL_URL ?? '/graphql';
const client = new ApolloClient({ link: new HttpLink({ uri }), cache: new InMemoryCache() });

createApp(App)
  .provide(DefaultApolloClient, client)
  .use(createSignet({ client, uri })) // + Signet
  .mount('#app');
