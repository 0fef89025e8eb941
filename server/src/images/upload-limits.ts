import type { Config } from '../config.js';
import type { ImagesRepo } from '../db/images-repo.js';
import { fromDatabase } from '../errors/index.js';
import { FORMATS, type ImageFormat } from '../uploads/sniff.js';

type LimitsConfig = Pick<
  Config,
  | 'uploadMaxBytes'
  | 'uploadMaxPixels'
  | 'uploadAllowSvg'
  | 'uploadConcurrencyPerViewer'
  | 'uploadQuotaBytes'
  | 'uploadQuotaFiles'
>;

/** What any viewer may upload on this deployment: the configuration, nothing per viewer. */
export interface UploadLimits {
  maxFileBytes: number;
  maxPixels: number;
  /** The formats the content may be, in the order messages name them. */
  formats: readonly ImageFormat[];
  maxConcurrent: number;
  quota: { maxBytes: number | undefined; maxFiles: number | undefined } | null;
}

/** A viewer's quota: its bounds and what the viewer's live images use of them now. */
export interface UploadQuotaView {
  maxBytes: number | undefined;
  maxFiles: number | undefined;
  usedBytes: number;
  usedFiles: number;
}

/** Every format the sniffer knows, in FORMATS' order; SVG only where UPLOAD_ALLOW_SVG lets it in. */
const WITH_SVG = Object.keys(FORMATS) as readonly ImageFormat[];
const RASTER = WITH_SVG.filter((f) => f !== 'svg');

export function acceptedFormats(config: Pick<Config, 'uploadAllowSvg'>): readonly ImageFormat[] {
  return config.uploadAllowSvg ? WITH_SVG : RASTER;
}

/** "JPEG, PNG, GIF, WebP or AVIF": the accepted formats, as refusals and the app name them. */
export function acceptedInWords(config: Pick<Config, 'uploadAllowSvg'>): string {
  const labels = acceptedFormats(config).map((f) => FORMATS[f].label);
  return `${labels.slice(0, -1).join(', ')} or ${labels.at(-1)}`;
}

export function uploadLimitsOf(config: LimitsConfig): UploadLimits {
  const { uploadQuotaBytes: maxBytes, uploadQuotaFiles: maxFiles } = config;
  return {
    maxFileBytes: config.uploadMaxBytes,
    maxPixels: config.uploadMaxPixels,
    formats: acceptedFormats(config),
    maxConcurrent: config.uploadConcurrencyPerViewer,
    quota: maxBytes === undefined && maxFiles === undefined ? null : { maxBytes, maxFiles },
  };
}

/** What the owner's live images use now (one statement, on the primary: quotas need exact figures). */
export async function quotaUsage(
  images: Pick<ImagesRepo, 'usage'>,
  ownerId: string,
): Promise<{ files: number; bytes: number }> {
  try {
    return await images.usage(ownerId);
  } catch (err) {
    throw fromDatabase(err) ?? err;
  }
}
