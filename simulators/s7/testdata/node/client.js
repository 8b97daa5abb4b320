// snap7's client (node-snap7) reading plcwatch's S7 simulator.
// Usage: node client.js PORT PDU. Prints one JSON line with what it read.
'use strict';
const snap7 = require('node-snap7');

const port = Number(process.argv[2]);
const pdu = Number(process.argv[3] || 480);
const c = new snap7.S7Client();
const out = {};
const err = () => c.ErrorText(c.LastError());

c.SetParam(c.RemotePort, port);
c.SetParam(c.PDURequest, pdu);
c.SetParam(c.RecvTimeout, 5000);
if (!c.ConnectTo('127.0.0.1', 0, 2)) {
  console.log(JSON.stringify({ error: 'connect: ' + err() }));
  process.exit(0);
}
out.pdu = c.PDULength();
const info = c.GetCpuInfo();
out.cpuInfo = info || err();
const oc = c.GetOrderCode();
out.orderCode = oc ? { code: oc.Code.trim(), version: `${oc.V1}.${oc.V2}.${oc.V3}` } : err();
out.protection = c.GetProtection() || err();
out.status = c.PlcStatus();
out.blocks = c.ListBlocks() || err();
const fcs = c.ListBlocksOfType(c.Block_FC);
out.fcs = fcs ? Array.from(fcs) : err();
const bi = c.GetAgBlockInfo(c.Block_OB, 1);
out.ob1 = bi ? { checksum: bi.CheckSum, mc7: bi.MC7Size, load: bi.LoadSize, lang: bi.BlkLang, author: bi.Author, family: bi.Family, header: bi.Header, date: bi.CodeDate } : err();
const db = c.DBRead(10, 0, 36);
out.db10 = db ? db.toString('hex') : err();
const multi = c.ReadMultiVars([
  { Area: c.S7AreaDB, WordLen: c.S7WLByte, DBNumber: 10, Start: 4, Amount: 4 },
  { Area: c.S7AreaDB, WordLen: c.S7WLByte, DBNumber: 99, Start: 0, Amount: 2 },
  { Area: c.S7AreaMK, WordLen: c.S7WLByte, Start: 0, Amount: 2 },
]);
out.multi = multi ? multi.map((m) => ({ result: m.Result, data: m.Data ? m.Data.toString('hex') : null })) : err();
// Writes and control: the simulator must refuse each.
out.refused = {
  dbWrite: !c.DBWrite(10, 4, 4, Buffer.from([0x42, 0xc8, 0, 0])),
  plcStop: !c.PlcStop(),
  setClock: !c.SetPlcDateTime(new Date()),
  password: !c.SetSessionPassword('secret'),
};
c.Disconnect();
console.log(JSON.stringify(out));
