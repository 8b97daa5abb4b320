// snap7's server (node-snap7) as a CPU for plcwatch's S7 connector tests.
// Usage: node server.js PORT. Prints {"ready":true} once listening, then
// reads commands, one per line, and answers each with one JSON line:
//   db NUMBER OFFSET HEX   write bytes into a DB (as an HMI would)
//   status run|stop        set the CPU status
//   restart                stop the server (dropping every client) and start
//                          it again on the same port, in RUN, as a CPU that
//                          was power-cycled
'use strict';
const snap7 = require('node-snap7');
const readline = require('readline');

const port = Number(process.argv[2]);
const s = new snap7.S7Server();
const dbs = { 10: Buffer.alloc(32), 11: Buffer.alloc(16) };
dbs[10].writeFloatBE(85.0, 4); // TankHighLimit
dbs[10].writeInt16BE(30, 8); // PumpStartDelay
for (const n of Object.keys(dbs)) s.RegisterArea(s.srvAreaDB, Number(n), dbs[n]);
s.SetParam(s.LocalPort, port);
if (!s.StartTo('127.0.0.1')) {
  console.log(JSON.stringify({ ready: false, error: s.ErrorText(s.LastError()) }));
  process.exit(0);
}
s.SetCpuStatus(s.S7CpuStatusRun);
console.log(JSON.stringify({ ready: true }));

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [cmd, ...args] = line.trim().split(/\s+/);
  let ok = true;
  if (cmd === 'db') {
    const [n, off, hex] = args;
    const buf = Buffer.from(s.GetArea(s.srvAreaDB, Number(n)));
    Buffer.from(hex, 'hex').copy(buf, Number(off));
    ok = s.SetArea(s.srvAreaDB, Number(n), buf) !== false;
  } else if (cmd === 'restart') {
    ok = s.Stop() !== false && s.StartTo('127.0.0.1') !== false;
    ok = ok && s.SetCpuStatus(s.S7CpuStatusRun) !== false;
  } else if (cmd === 'status') {
    ok = s.SetCpuStatus(args[0] === 'stop' ? s.S7CpuStatusStop : s.S7CpuStatusRun) !== false;
  } else {
    ok = false;
  }
  console.log(JSON.stringify({ ok, cmd }));
});
rl.on('close', () => {
  s.Stop();
  process.exit(0);
});
