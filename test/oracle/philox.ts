// TypeScript port of native/include/visattn/philox.h: Philox-4x32-10 (Salmon et al., SC'11) with
// key = seed and counter = (group, offset), group = element index / 4, four 32-bit outputs per group;
// uniform24 (the top 24 bits as a float in [0, 1)) and dropoutKeep. Used by the oracles to reproduce
// every device's dropout masks bit for bit. Indices, seeds and offsets are integers < 2^53.

const TWO32 = 4294967296;

/** hi and lo 32-bit words of the 64-bit product a·b (a, b uint32), exactly. */
function mulhilo(a: number, b: number): [number, number] {
  const lo = Math.imul(a, b) >>> 0;
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = Math.floor(ll / 65536) + (lh % 65536) + (hl % 65536);
  const hi = (ah * bh + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536)) >>> 0;
  return [hi, lo];
}

/** The four 32-bit outputs of Philox-4x32-10 for counter (group, offset) and key seed. */
export function philox4x32_10(group: number, offset: number, seed: number): [number, number, number, number] {
  let c0 = group % TWO32;
  let c1 = Math.floor(group / TWO32) >>> 0;
  let c2 = offset % TWO32;
  let c3 = Math.floor(offset / TWO32) >>> 0;
  let k0 = seed % TWO32;
  let k1 = Math.floor(seed / TWO32) >>> 0;
  for (let r = 0; r < 10; r++) {
    const [hi0, lo0] = mulhilo(0xd2511f53, c0);
    const [hi1, lo1] = mulhilo(0xcd9e8d57, c2);
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n1 = lo1;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    const n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** Uniform in [0, 1) from the top 24 bits (exact in float32). */
export function uniform24(u: number): number {
  return (u >>> 8) / 16777216;
}

/** Element `index` of the uniform stream (seed, offset): what va.rand returns at that index. */
export function uniformAt(index: number, seed: number, offset: number): number {
  return uniform24(philox4x32_10(Math.floor(index / 4), offset, seed)[index % 4]);
}

/** Dropout keep decision of element `index` of stream (seed, offset): uniform >= p (p as float32). */
export function dropoutKeep(index: number, seed: number, offset: number, p: number): boolean {
  return uniformAt(index, seed, offset) >= Math.fround(p);
}

/** The whole keep mask of n elements (1 kept, 0 dropped); p = 0 keeps everything. */
export function dropoutMask(n: number, seed: number, offset: number, p: number): Uint8Array {
  const m = new Uint8Array(n);
  const pf = Math.fround(p);
  for (let g = 0; g * 4 < n; g++) {
    const r = philox4x32_10(g, offset, seed);
    for (let l = 0; l < 4 && g * 4 + l < n; l++) m[g * 4 + l] = uniform24(r[l]) >= pf ? 1 : 0;
  }
  return m;
}
