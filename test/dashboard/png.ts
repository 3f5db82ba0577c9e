/**
 * Just enough PNG decoding to check a browser screenshot: its size, and that
 * it is not blank (a page that failed to render is one flat colour). Handles
 * what Chromium writes: 8-bit RGB or RGBA, not interlaced.
 */
import { inflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface DecodedPng {
  readonly width: number;
  readonly height: number;
  /** Bytes per pixel: 3 (RGB) or 4 (RGBA). */
  readonly channels: number;
  /** Unfiltered rows, `width * channels` bytes each. */
  readonly pixels: Buffer;
}

export function decodePng(file: Buffer): DecodedPng {
  if (file.length < 33 || !file.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG file');
  let width = 0, height = 0, channels = 0;
  const idat: Buffer[] = [];
  for (let off = 8; off + 8 <= file.length; ) {
    const len = file.readUInt32BE(off);
    const type = file.toString('latin1', off + 4, off + 8);
    const data = file.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colorType, , , interlace] = data.subarray(8, 13);
      if (depth !== 8 || interlace !== 0 || (colorType !== 2 && colorType !== 6))
        throw new Error(`unsupported PNG: depth ${depth}, colour type ${colorType}, interlace ${interlace}`);
      channels = colorType === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  if (!width || !height || idat.length === 0) throw new Error('PNG without IHDR or IDAT');
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) throw new Error('PNG data shorter than its size');
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? row[x - channels] : 0;
      const b = prev[x];
      const c = x >= channels ? prev[x - channels] : 0;
      let v: number;
      switch (filter) {
        case 0: v = src[x]; break;
        case 1: v = src[x] + a; break;
        case 2: v = src[x] + b; break;
        case 3: v = src[x] + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v = src[x] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default: throw new Error(`bad PNG filter ${filter} in row ${y}`);
      }
      row[x] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/** Colours of a grid of sample pixels: how many distinct ones, and the share of the most common. */
export function colourSpread(png: DecodedPng, step = 7): { distinct: number; dominantShare: number } {
  const counts = new Map<number, number>();
  let n = 0;
  for (let y = 0; y < png.height; y += step)
    for (let x = 0; x < png.width; x += step) {
      const i = (y * png.width + x) * png.channels;
      const rgb = (png.pixels[i] << 16) | (png.pixels[i + 1] << 8) | png.pixels[i + 2];
      counts.set(rgb, (counts.get(rgb) ?? 0) + 1);
      n++;
    }
  return { distinct: counts.size, dominantShare: Math.max(...counts.values()) / n };
}
