import { onBeforeUnmount, ref } from 'vue';

export const VIEWS = ['gallery', 'upload', 'stats'] as const;
export type View = (typeof VIEWS)[number];

function parse(hash: string): View {
  const name = hash.replace(/^#\/?/, '').split(/[/?]/)[0];
  return (VIEWS as readonly string[]).includes(name ?? '') ? (name as View) : 'gallery';
}

/** `#/gallery/<id>` → `<id>`: the image open in the detail view, else null. */
export function parseImageId(hash: string): string | null {
  const [name, id] = hash.replace(/^#\/?/, '').split('?')[0]?.split('/') ?? [];
  return name === 'gallery' && id ? decodeURIComponent(id) : null;
}

export const imageHref = (id: string) => `#/gallery/${encodeURIComponent(id)}`;

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

/** The image open in the detail view (`#/gallery/<id>`), following the hash. */
export function useOpenImage() {
  const id = ref<string | null>(parseImageId(location.hash));
  const sync = () => {
    id.value = parseImageId(location.hash);
  };
  window.addEventListener('hashchange', sync);
  onBeforeUnmount(() => window.removeEventListener('hashchange', sync));
  return id;
}
