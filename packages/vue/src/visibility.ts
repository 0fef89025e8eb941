export type Observe = (el: Element, onChange: (visible: boolean) => void) => () => void;

/**
 * One IntersectionObserver for every image (not one each). No root margin: an image that is
 * off screen is never fetched and never holds a place in the URL subscription.
 */
export function createVisibility(options: IntersectionObserverInit = { rootMargin: '0px' }): Observe {
  const callbacks = new Map<Element, (visible: boolean) => void>();
  let observer: IntersectionObserver | null = null;
  const get = () => {
    observer ??= new IntersectionObserver((entries) => {
      for (const entry of entries) callbacks.get(entry.target)?.(entry.isIntersecting);
    }, options);
    return observer;
  };
  return (el, onChange) => {
    callbacks.set(el, onChange);
    get().observe(el);
    return () => {
      callbacks.delete(el);
      observer?.unobserve(el);
    };
  };
}
