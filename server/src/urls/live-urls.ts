import type { Viewer } from '../auth/viewer.js';
import type { EventBus, SignedUrlListener } from '../events/event-bus.js';
import type { ImageService } from '../images/image-service.js';
import type { Metrics } from '../metrics.js';

/**
 * `signedUrlRefreshed`: a viewer listens to the re-signed URLs of the images it may see (ids it
 * cannot see deliver nothing, exactly like ids that do not exist).
 */
export class LiveUrls {
  constructor(
    private readonly d: {
      images: Pick<ImageService, 'visible'>;
      events: Pick<EventBus, 'subscribe'>;
      metrics: Pick<Metrics, 'sseSubscribers'>;
    },
  ) {}

  /** Starts listening; the returned function stops it. */
  async listen(viewer: Viewer, ids: readonly string[], listener: SignedUrlListener): Promise<() => void> {
    const rows = await this.d.images.visible(viewer, ids);
    const unsubscribe = this.d.events.subscribe(
      rows.map((r) => r.id),
      listener,
    );
    this.d.metrics.sseSubscribers.inc();
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      unsubscribe();
      this.d.metrics.sseSubscribers.dec();
    };
  }
}
