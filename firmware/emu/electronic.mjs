// electronic.mjs - rp2emu.mjs --plugin: the electronic layer wired between the Pico's drive and ADC0 (GP26).
//
//   node rp2emu.mjs ... --plugin firmware/emu/electronic.mjs --circuit UNIT.json
//        [--drive pwm|mcp4725] [--pwm-pin 15] [--i2c-addr 96] [--adc-log FILE] [--noise 0|1]
//
// UNIT.json comes from firmware/emu/circuit_table.py (one unit of pnn.physics.Electronic). Each ADC0
// conversion returns the circuit's node voltage at the emulated instant the conversion starts, from the
// drive's whole history: the PWM pin's every edge (`--drive pwm`), or the codes an emulated MCP4725 on
// I2C0 was sent (`--drive mcp4725`, the rp2040_mcp4725 board). `--adc-log FILE` appends each
// conversion's start (emulated ns, one a line; flushed every 100 ms of wall time and at exit).
import fs from 'fs';
import { Circuit } from './circuit.mjs';

const MCP4725_FULL = 4095;

export default function ({ mcu, clock, log, args }) {
  if (!args.circuit) throw new Error('electronic.mjs needs --circuit UNIT.json (python firmware/emu/circuit_table.py UNIT.json)');
  const circuit = new Circuit(JSON.parse(fs.readFileSync(args.circuit, 'utf8')), { noise: args.noise !== '0' });
  const drive = args.drive || 'pwm';
  if (drive === 'pwm') {
    const pin = Number(args['pwm-pin'] ?? 15);
    // GPIOPinState: 0 Low, 1 High, 2.. an input (the pin floats: the tank's R1 then sees no drive)
    mcu.gpio[pin].addListener((state) => circuit.edge(clock.nanos, state === 1 ? 1 : 0));
  } else if (drive === 'mcp4725') {
    addMcp4725(mcu, Number(args['i2c-addr'] ?? 0x60), (code) => circuit.edge(clock.nanos, code / MCP4725_FULL));
  } else {
    throw new Error(`electronic.mjs --drive ${drive}: expected pwm or mcp4725`);
  }

  const logFile = args['adc-log'];
  let stamps = [];
  const flush = () => { if (logFile && stamps.length) { fs.appendFileSync(logFile, stamps.join('\n') + '\n'); stamps = []; } };
  if (logFile) { setInterval(flush, 100).unref(); process.on('exit', flush); }

  fixDmaTimers(mcu);
  const adc = mcu.adc;
  let value = 0;
  const done = clock.createAlarm(() => adc.completeADCRead(value, false));
  adc.onADCRead = (ch) => {
    // The RP2040 samples at the start of its 96-cycle (2 us at 48 MHz) conversion.
    const t = clock.nanos;
    value = ch === 0 ? circuit.adcCode(t) : adc.channelValues[ch];
    if (logFile && ch === 0) stamps.push(t);
    done.schedule(adc.sampleTime * 1000);
  };
  log(`electronic layer on ADC0, drive ${drive}, unit seed ${circuit.t.seed}, noise ${circuit.noiseV} V`);
}

// rp2040js 1.4.1 inverts the DMA pacing timers: it waits (X/Y) / clk_sys between transfers, where the
// RP2040 datasheet (2.5.7, TIMER0..3) makes a TREQ at (X/Y) * clk_sys, i.e. every (Y/X) / clk_sys; and it
// reads TIMER3's X with `>>> 36`. The firmware programs the silicon's formula; this puts it right here.
const TREQ_TIMER0 = 0x3b, TREQ_PERMANENT = 0x3f;
function fixDmaTimers(mcu) {
  const dma = mcu.dma;
  dma.getTimer = function (treq) {
    if (treq === TREQ_PERMANENT) return 1e6 / mcu.clkSys;
    const k = treq - TREQ_TIMER0;
    if (k < 0 || k > 3) return 0;
    const reg = [this.timer0, this.timer1, this.timer2, this.timer3][k] >>> 0;
    const x = reg >>> 16, y = reg & 0xffff;
    return x && y ? ((y / x) * 1e6) / mcu.clkSys : 0; // us between transfers
  };
}

// An MCP4725 on I2C0: acks its address, takes 2-byte fast-write commands (C2 C1 = 00: 0 0 PD1 PD0 D11..D8,
// then D7..D0; the output changes after the second byte) and 3-byte write-DAC commands (C2 C1 C0 = 010).
function addMcp4725(mcu, address, onCode) {
  const i2c = mcu.i2c[0];
  let bytes = [], ours = false;
  i2c.onConnect = (addr) => { ours = addr === address; bytes = []; i2c.completeConnect(ours); };
  i2c.onWriteByte = (b) => {
    bytes.push(b);
    if ((bytes[0] & 0xc0) === 0 && bytes.length === 2) { onCode(((bytes[0] & 0x0f) << 8) | bytes[1]); bytes = []; }
    else if ((bytes[0] & 0xe0) === 0x40 && bytes.length === 3) { onCode((bytes[1] << 4) | (bytes[2] >> 4)); bytes = []; }
    i2c.completeWrite(ours);
  };
  i2c.onReadByte = () => i2c.completeRead(0xc0); // status: ready, power-down bits 00
  i2c.onStop = () => { bytes = []; i2c.completeStop(); };
}
