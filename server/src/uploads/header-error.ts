import { FORMATS, type ImageFormat } from './sniff.js';

export interface Dimensions {
  width: number;
  height: number;
}

/** The header of a recognised format is cut short or inconsistent. */
export class ImageHeaderError extends Error {
  constructor(format: ImageFormat, detail: string) {
    super(`The ${FORMATS[format].label} header is ${detail}`);
    this.name = 'ImageHeaderError';
  }
}
