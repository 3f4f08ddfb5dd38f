// Step 7's last line: decoded pixels in [0, 1] -> the RGBA bytes `lds generate` saves.
//
// diffusers' numpy_to_pil: (images * 255).round().astype("uint8"), in float32; numpy rounds half to even.

const f = Math.fround;

function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// (1, 3, H, W) float32 in [0, 1] -> Uint8ClampedArray H*W*4
export function toRGBA(image, width, height) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  const plane = width * height;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) rgba[4 * p + c] = roundHalfEven(f(image[c * plane + p] * 255));
    rgba[4 * p + 3] = 255;
  }
  return rgba;
}
