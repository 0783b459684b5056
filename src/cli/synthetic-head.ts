/**
 * A head-like slice for loads and tests (not anatomy): an ellipse of
 * `inside`, with a little texture, in `outside`, and a brighter `core` at its
 * centre. The values are whatever units the caller means (stored or physical).
 */
export function syntheticHead(width: number, height: number, values: { outside: number; inside: number; core: number }): Float32Array {
  const { outside, inside, core } = values;
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = (x - width / 2) / (width * 0.4);
      const dy = (y - height / 2) / (height * 0.45);
      const r = dx * dx + dy * dy;
      out[y * width + x] = r < 0.25 ? core : r < 1 ? inside + ((x * 7 + y * 3) % 11) : outside;
    }
  }
  return out;
}
