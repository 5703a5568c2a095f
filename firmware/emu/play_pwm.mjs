// play_pwm.mjs - the circuit alone, fed an ideal RP2040 PWM (TOP 255, so code/256 duty at 125 MHz/256):
// reads {"table": FILE, "codes": [[...], ...], "rate": S/s, "noise": false} on stdin and prints, per
// example, OUT (V) at the end of each tick, starting from rest. The check that circuit.mjs and
// pnn.physics.Electronic are one circuit (tests/test_emu_circuit.py) runs this without an emulator.
import fs from 'fs';
import { Circuit } from './circuit.mjs';

const PERIOD_NS = 256 * 8; // one PWM period: 256 cycles of 8 ns
const req = JSON.parse(fs.readFileSync(0, 'utf8'));
const table = JSON.parse(fs.readFileSync(req.table, 'utf8'));
const tickNs = 1e9 / req.rate;
const out = req.codes.map((codes) => {
  const c = new Circuit(table, { noise: !!req.noise });
  const vs = [];
  let t = 0;
  codes.forEach((code, n) => {
    const end = (n + 1) * tickNs;
    // the PWM counter wraps every PERIOD_NS from t = 0; the pin is high for the first code*8 ns of each period
    while (t < end) {
      const start = Math.floor(t / PERIOD_NS) * PERIOD_NS;
      const fall = start + code * 8;
      if (code > 0 && t < fall) { c.edge(t, 1); t = Math.min(fall, end); if (t === fall) c.edge(t, 0); }
      else { c.edge(t, 0); t = Math.min(start + PERIOD_NS, end); }
    }
    vs.push(c.out(end));
  });
  return vs;
});
process.stdout.write(JSON.stringify(out));
