// circuit.mjs - the electronic layer (hardware/electronic) stepped in emulated time from a pin's level history.
//
// One unit of pnn.physics.Electronic, exported by circuit_table.py: the R1-L1-C1 tank is stepped exactly
// (its propagators for one SUBSTEP) with the 2N3904's base current as a first-order-hold input
// (predictor-corrector), the stage is the host's tabulated DC map vA -> (vout, iB, tau), and OUT follows
// tau(vA) dv/dt = vout(vA) - v exactly for a linear vout over each step: the host model's scheme, on a
// 1 us grid instead of the host's tick-locked one. The drive of each step is the fraction of it the pin
// spent high times the high level (the PWM carrier itself is filtered away by the 5 kHz tank).
// MIT licensed, like the rest of pnn.

class Cells {
  // cubic Hermite cells on a uniform grid, as pnn.physics._table.HermiteTable (input clamped to the grid)
  constructor({ x0, dx, coef }) { this.x0 = x0; this.dx = dx; this.c = Float64Array.from(coef); this.n = this.c.length / 4; }
  at(x) {
    let s = (x - this.x0) / this.dx;
    if (s < 0) s = 0; else if (s > this.n) s = this.n;
    let k = Math.floor(s); if (k > this.n - 1) k = this.n - 1;
    const t = s - k, c = this.c, i = 4 * k;
    return c[i] + t * (c[i + 1] + t * (c[i + 2] + t * c[i + 3]));
  }
}

// A seeded normal stream (mulberry32 + Box-Muller): the same unit and seed give the same noise.
function normals(seed) {
  let a = (seed >>> 0) ^ 0x5eed, spare = null;
  const u = () => { a = (a + 0x6d2b79f5) | 0; let t = Math.imul(a ^ (a >>> 15), 1 | a); t ^= t + Math.imul(t ^ (t >>> 7), 61 | t); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  return () => {
    if (spare !== null) { const s = spare; spare = null; return s; }
    const r = Math.sqrt(-2 * Math.log(1 - u())), th = 2 * Math.PI * u();
    spare = r * Math.sin(th); return r * Math.cos(th);
  };
}

export class Circuit {
  /** table: circuit_table.py's JSON; noise: false for the noiseless node voltage. */
  constructor(table, { noise = true } = {}) {
    this.t = table;
    this.hNs = table.h_s * 1e9;
    [this.p11, this.p12, this.p21, this.p22, this.gu1, this.gu2, this.gi1, this.gi2, this.q1, this.q2] = table.coef;
    this.vout = new Cells(table.stage.vout); this.ib = new Cells(table.stage.ib); this.tau = new Cells(table.stage.tau);
    this.high = table.drive_high_v;
    this.noiseV = noise ? table.noise_v : 0;
    this.normal = normals(table.seed);
    this.il = table.rest.il; this.va = table.rest.va; this.iB = this.ib.at(this.va);
    this.y = this.vout.at(this.va); this.v = this.y; this.tauNow = this.tau.at(this.va);
    this.tStep = 0;      // start of the step being filled (ns)
    this.tLevel = 0;     // when the pin took its present level
    this.level = 0;      // the drive's present level, a fraction of the high level
    this.highNs = 0;     // level-weighted time so far in the step being filled
    this.steps = 0;
  }

  /** The drive changed at emulated time tNs to `level`: 0/1 for a PWM pin, 0..1 for a DAC's output. */
  edge(tNs, level) {
    this.advance(tNs);
    this.level = +level;
  }

  /** Step the circuit up to emulated time tNs (whole steps; the partial one keeps its high time). */
  advance(tNs) {
    const h = this.hNs;
    while (tNs >= this.tStep + h) {
      const end = this.tStep + h;
      if (this.level) this.highNs += this.level * (end - Math.max(this.tLevel, this.tStep));
      const u = this.high * this.highNs / h;
      this.highNs = 0; this.tStep = end; this.tLevel = end;
      if (this.settledAt(u)) { // a held level, long settled: skip whole steps (idle time between runs)
        this.tStep += Math.floor((tNs - this.tStep) / h) * h; this.tLevel = this.tStep; continue;
      }
      this.step(u);
    }
    if (this.level) this.highNs += this.level * (tNs - Math.max(this.tLevel, this.tStep));
    this.tLevel = tNs;
  }

  settledAt(u) {
    // DC at drive u: vA + (R1+RL) iB(vA) = u with iL = iB; settled when the last steps moved nothing
    return this.quiet > 2000 && u === this.lastU;
  }

  step(u) {
    const { p11, p12, p21, p22, gu1, gu2, gi1, gi2, q1, q2 } = this;
    const ilP = p11 * this.il + p12 * this.va + gu1 * u + gi1 * this.iB;
    const vaP = p21 * this.il + p22 * this.va + gu2 * u + gi2 * this.iB;
    const dib = this.ib.at(vaP) - this.iB;
    const va0 = this.va;
    this.il = ilP + q1 * dib; this.va = vaP + q2 * dib; this.iB = this.ib.at(this.va);
    // OUT: tau dv/dt = y - v, y linear over the step, tau its mean (the host's first-order-hold step)
    const y1 = this.vout.at(this.va), tau1 = this.tau.at(this.va);
    const r = this.hNs * 1e-9 / (0.5 * (this.tauNow + tau1));
    const oneMinusA = -Math.expm1(-r), b1 = 1 - oneMinusA / r;
    const v0 = this.v;
    this.v = (1 - oneMinusA) * this.v + (oneMinusA - b1) * this.y + b1 * y1;
    this.y = y1; this.tauNow = tau1;
    const still = Math.abs(this.va - va0) < 1e-9 && Math.abs(this.v - v0) < 1e-9;
    this.quiet = still && u === this.lastU ? (this.quiet || 0) + 1 : 0;
    this.lastU = u;
    this.steps++;
  }

  /** OUT (V) at emulated time tNs. */
  out(tNs) { this.advance(tNs); return this.v; }

  /** The ADC code a conversion started at tNs returns: the divided OUT plus readout noise, 12 bits. */
  adcCode(tNs) {
    const a = this.t.adc, full = (1 << a.bits) - 1;
    const volts = this.out(tNs) * a.gain + (this.noiseV ? this.noiseV * this.normal() : 0);
    const code = Math.round(volts / a.vref * full);
    return code < 0 ? 0 : code > full ? full : code;
  }
}
