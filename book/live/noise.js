// Step 4 of the loop: the starting noise for a seed, as torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed)).
//
// Chapter 7 (Denoising) shows this noise. lds draws it with torch's CPU generator, so the same seed
// gives the same image on every machine; the page reproduces that generator:
//   - torch's CPU generator is a 32-bit Mersenne Twister (mt19937) seeded with the seed's low 32 bits;
//   - for a tensor of 16 values or more, torch's normal_fill (aten/src/ATen/native/cpu/DistributionTemplates.h)
//     first fills it with uniform floats, (32-bit draw & 0xFFFFFF) * 2^-24, then applies Box-Muller
//     to each block of 16, pairing value j with value j + 8 and using u1 = 1 - u; when the size is not
//     a multiple of 16 the last 16 values are drawn again and transformed once more;
//   - on x86 CPUs with AVX2 it transforms with log256_ps and sincos256_ps from avx_mathfun.h (Pommier's
//     cephes-based float32 polynomials), which are written out below in float32 arithmetic.
// The uniforms are identical to torch's. The normals match torch's to the bit in more than 99.8% of
// values and otherwise by one float32 rounding step (about 6e-8), because the compiler fuses some of
// those polynomials' multiply-adds in torch's binary, which its source does not say
// (tests/test_live.py and benchmarks/live.py measure it against torch).

const f = Math.fround;
const fma = (a, b, c) => f(a * b + c);  // a*b is exact in a double; one rounding to float32 after the sum

export class MT19937 {
  constructor(seed) {
    const s = new Uint32Array(624);
    s[0] = Number(BigInt(seed) & 0xffffffffn);
    for (let i = 1; i < 624; i++) s[i] = (Math.imul(1812433253, s[i - 1] ^ (s[i - 1] >>> 30)) + i) >>> 0;
    this.state = s;
    this.index = 624;
  }

  next() {  // one 32-bit draw
    const s = this.state;
    if (this.index >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (s[k] & 0x80000000) | (s[(k + 1) % 624] & 0x7fffffff);
        s[k] = s[(k + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.index = 0;
    }
    let y = s[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  uniform() {  // at::uniform_real_distribution<float>(0, 1): 24 random bits
    return (this.next() & 0xffffff) * 2 ** -24;
  }
}

// avx_mathfun.h's log256_ps, one lane.
const LOG_P = [7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
  -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1].map(f);
const LOG_Q1 = f(-2.12194440e-4), LOG_Q2 = f(0.693359375), SQRTHF = f(0.707106781186547524);
const view = new DataView(new ArrayBuffer(4));

function logf(x) {
  view.setFloat32(0, x);
  const bits = view.getInt32(0);
  let e = f(f((bits >>> 23) - 0x7f) + 1);
  view.setInt32(0, (bits & ~0x7f800000) | 0x3f000000);  // the mantissa, in [0.5, 1)
  let m = view.getFloat32(0);
  if (m < SQRTHF) {
    const tmp = m;
    m = f(m - 1);
    e = f(e - 1);
    m = f(m + tmp);
  } else {
    m = f(m - 1);
  }
  const z = f(m * m);
  let y = LOG_P[0];
  for (let k = 1; k < LOG_P.length; k++) y = fma(y, m, LOG_P[k]);
  y = f(y * m);
  y = f(y * z);
  y = f(y + f(e * LOG_Q1));
  y = f(y - f(z * 0.5));
  m = f(m + y);
  return f(m + f(e * LOG_Q2));
}

// avx_mathfun.h's sincos256_ps, one lane (x >= 0 here: theta = 2 pi u2).
const DP1 = f(-0.78515625), DP2 = f(-2.4187564849853515625e-4), DP3 = f(-3.77489497744594108e-8);
const SIN_P = [-1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1].map(f);
const COS_P = [2.443315711809948E-005, -1.388731625493765E-003, 4.166664568298827E-002].map(f);
const FOPI = f(1.27323954473516);

function sincosf(x) {
  let j = Math.trunc(f(x * FOPI));
  j = (j + 1) & ~1;
  const y = f(j);
  const sinSign = (j & 4) !== 0;
  const polyCos = (j & 2) === 0;  // which polynomial gives the sine
  const cosSign = (~(j - 2) & 4) !== 0;
  x = f(x + f(y * DP1));
  x = f(x + f(y * DP2));
  x = f(x + f(y * DP3));
  const z = f(x * x);
  let yc = f(f(COS_P[0] * z) + COS_P[1]);
  yc = f(f(yc * z) + COS_P[2]);
  yc = f(f(yc * z) * z);
  yc = f(f(yc - f(z * 0.5)) + 1);
  let ys = f(f(SIN_P[0] * z) + SIN_P[1]);
  ys = f(f(ys * z) + SIN_P[2]);
  ys = f(ys * z);
  ys = fma(ys, x, x);
  let s = polyCos ? ys : yc;
  let c = polyCos ? yc : ys;
  return [sinSign ? -s : s, cosSign ? -c : c];
}

const TWO_PI = f(2 * Math.PI);

function boxMuller16(data, o) {  // torch's NormalFill16<float> (AVX2), mean 0, std 1
  for (let j = 0; j < 8; j++) {
    const u1 = f(1 - data[o + j]);
    const u2 = data[o + j + 8];
    const radius = f(Math.sqrt(f(-2 * logf(u1))));
    const [s, c] = sincosf(f(TWO_PI * u2));
    data[o + j] = f(radius * c);
    data[o + j + 8] = f(radius * s);
  }
}

export function randn(size, seed) {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a whole number from 0 up, got ${seed}`);
  const gen = new MT19937(seed);
  const data = new Float32Array(size);
  if (size < 16) {  // torch draws small tensors one double normal at a time; lds-mini's latents are 256 values
    throw new RangeError("randn: tensors under 16 values are drawn differently by torch and are not reproduced here");
  }
  for (let i = 0; i < size; i++) data[i] = gen.uniform();
  for (let i = 0; i + 16 <= size; i += 16) boxMuller16(data, i);
  if (size % 16 !== 0) {
    const o = size - 16;
    for (let i = 0; i < 16; i++) data[o + i] = gen.uniform();
    boxMuller16(data, o);
  }
  return data;
}
