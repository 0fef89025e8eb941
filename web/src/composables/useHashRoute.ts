import { onBeforeUnmount, ref } from 'vue';

export const VIEWS = ['gallery', 'upload', 'stats'] as const;
export type View = (typeof VIEWS)[number];

function parse(hash: string): View {
  const name = hash.replace(/^#\/?/, '').split(/[/?]/)[0];
  return (VIEWS as readonly string[]).includes(name ?? '') ? (name as View) : 'gallery';
}

/** `#/gallery`, `#/upload`, `#/stats`: three views need no router package. */
export function useHashRoute() {
  const view = ref<View>(parse(location.hash));
  const sync = () => {
    view.value = parse(location.hash);
  };
  window.addEventListener('hashchange', sync);
  onBeforeUnmount(() => window.removeEventListener('hashchange', sync));
  return view;
}
