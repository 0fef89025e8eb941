import type { VariantSpec } from './variant.js';

/**
 * The Cloud Infinite (数据万象) processing a variant is on COS: one `imageMogr2/…` request
 * parameter (a name without a value) that renders the variant by the rules of `VariantSpec`. Each
 * operation is one documented by Tencent for imageMogr2 (see docs/architecture.md, "Variants on
 * cos"):
 * 1. `auto-orient` — rotate by the EXIF orientation, first, so the sizes below are as displayed;
 * 2. the fit, never enlarging (the domain has already capped the box to the original's size):
 *    - inside, both sides: `thumbnail/<W>x<H>>` (scale down to fit the box; never up);
 *    - inside, one side: `thumbnail/<W>x` or `thumbnail/x<H>` (the other side follows);
 *    - cover: `thumbnail/!<W>x<H>r` (the smallest size covering the box) then
 *      `gravity/center/crop/<W>x<H>` (its centre, exactly W × H);
 *    - contain: `thumbnail/<W>x<H>/pad/1` (fit in the box, centred, padded to exactly W × H with
 *      the documented default colour, white);
 * 3. `format/jpg|png|webp|avif` (absent: the original's format); `avif` needs the bucket's
 *    "advanced compression" switched on;
 * 4. `quality/<Q>!` — the `!` forces Q (without it COS takes the smaller of Q and the original's
 *    quality). The relative `rquality` and floor `lquality` depend on the original's quality, so a
 *    variant key could not say what they produce; they are not used. Quality applies to lossy
 *    output only, so it is left out for PNG;
 * 5. `strip` — drop EXIF (GPS included) and other metadata.
 * `ignore-error/1` is deliberately absent: on a failure it would serve the original, which is
 * larger than the variant and still carries its metadata.
 */
export function cosProcessing(v: VariantSpec): string {
  const ops = ['imageMogr2', 'auto-orient'];
  const w = v.width;
  const h = v.height;
  if (v.fit === 'inside') {
    if (w !== undefined && h !== undefined) ops.push('thumbnail', `${w}x${h}>`);
    else if (w !== undefined) ops.push('thumbnail', `${w}x`);
    else if (h !== undefined) ops.push('thumbnail', `x${h}`);
  } else {
    if (w === undefined || h === undefined) throw new Error(`a ${v.fit} variant needs both sides`);
    if (v.fit === 'cover') ops.push('thumbnail', `!${w}x${h}r`, 'gravity', 'center', 'crop', `${w}x${h}`);
    else ops.push('thumbnail', `${w}x${h}`, 'pad', '1');
  }
  if (v.format !== undefined) ops.push('format', v.format === 'jpeg' ? 'jpg' : v.format);
  if (v.quality !== undefined && v.format !== 'png') ops.push('quality', `${v.quality}!`);
  ops.push('strip');
  return ops.join('/');
}
