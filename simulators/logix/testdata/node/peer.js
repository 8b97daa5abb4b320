// Independent EtherNet/IP client check of plcwatch's Logix simulator.
// Usage: node peer.js ADDRESS SLOT TAG[,TAG...]
// Connects with st-ethernet-ip (which dials port 44818), which reads the
// controller identity and the whole tag list while connecting, then reads
// the named tags and prints one JSON line: {identity, tags, programs,
// templates, values} or {error}.
const { Controller, Tag } = require("st-ethernet-ip");

async function main() {
  const [address, slot, names] = process.argv.slice(2);
  const plc = new Controller();
  await plc.connect(address, Number(slot));
  const p = plc.properties;
  const values = {};
  for (const name of (names || "").split(",").filter(Boolean)) {
    const tag = new Tag(name);
    await plc.readTag(tag);
    // LINT values arrive as BigInt, which JSON cannot carry: send text.
    values[name] = typeof tag.value === "bigint" ? tag.value.toString() : tag.value;
  }
  const templates = {};
  for (const t of Object.values(plc.templateList)) {
    templates[t._name] = t._members.map((m) => m.name);
  }
  const out = {
    identity: {
      name: p.name,
      serial: p.serial_number,
      version: p.version,
      status: p.status,
      run: p.run,
      program: p.program,
      faulted: p.faulted,
    },
    tags: plc.tagList.filter((t) => !t.program).map((t) => t.name),
    programTags: plc.tagList.filter((t) => t.program).length,
    programs: plc.state.tagList.programs,
    templates,
    values,
  };
  await plc.disconnect();
  // st-ethernet-ip leaves its request timers running; exit once written.
  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0));
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && (e.message || JSON.stringify(e))) }) + "\n");
  process.exit(1);
});
