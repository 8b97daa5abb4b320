// An OPC UA server built with node-opcua, shaped unlike plcwatch's own
// simulator, for interoperability tests of the OPC UA connector.
//
// usage: node server.js PORT PKI_DIR
// Prints {"endpoint": ..., "thumbprint": <sha256 of the server certificate DER>}
// once listening, then reads one JSON command per line on stdin:
//   {"set": "ReadOnlyLimit", "value": 12.5}   change a value as an engineer would
//   {"churn": true}                           move the live values
// answering {"ok": true} (or {"error": ...}). Exits when stdin closes.
"use strict";
const path = require("path");
const crypto = require("crypto");
const readline = require("readline");
const {
  OPCUAServer, OPCUACertificateManager, Variant, DataType, MessageSecurityMode, SecurityPolicy, nodesets,
} = require("node-opcua");

async function main() {
  const [port, pki] = process.argv.slice(2);
  const mk = async (sub) => {
    const m = new OPCUACertificateManager({ rootFolder: path.join(pki, sub), automaticallyAcceptUnknownCertificate: true });
    await m.initialize();
    return m;
  };
  const server = new OPCUAServer({
    port: Number(port),
    host: "127.0.0.1",
    hostname: "127.0.0.1",
    serverCertificateManager: await mk("server"),
    userCertificateManager: await mk("user"),
    nodeset_filename: [nodesets.standard],
    securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
    securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
    allowAnonymous: true,
    userManager: { isValidUser: (user, password) => user === "operator" && password === "s3cret" },
    buildInfo: { productName: "BoilerHouse Controller", manufacturerName: "Elsewhere Automation", softwareVersion: "7.1.0", buildNumber: "42" },
  });
  await server.initialize();

  const state = {
    Checksum: "c0ffee01", Revision: "R12",
    ReadOnlyLimit: 180.0, SteamSetpoint: 12.5,
    ManualSpeed: 900.0, Pressure: 11.8,
  };
  const types = { Checksum: DataType.String, Revision: DataType.String };
  const space = server.engine.addressSpace;
  const ns = space.getOwnNamespace();
  const boiler = ns.addObject({ organizedBy: space.rootFolder.objects, browseName: "BoilerHouse" });
  const folder = (name) => ns.addObject({ componentOf: boiler, browseName: name });
  const logic = folder("Logic");
  const limits = folder("Limits");
  const drive = folder("Drive");
  const meas = folder("Measurements");
  const variable = (parent, name, writable) => ns.addVariable({
    componentOf: parent,
    browseName: name,
    dataType: types[name] || DataType.Double,
    accessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
    userAccessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
    minimumSamplingInterval: 1000,
    value: { get: () => new Variant({ dataType: types[name] || DataType.Double, value: state[name] }) },
  });
  variable(logic, "Checksum", false);
  variable(logic, "Revision", false);
  variable(limits, "ReadOnlyLimit", false); // a setpoint the server does not let clients write
  variable(limits, "SteamSetpoint", true);
  variable(drive, "ManualSpeed", true); // writable, but a live value
  variable(meas, "Pressure", false);

  await server.start();
  const cert = server.getCertificate();
  const thumbprint = crypto.createHash("sha256").update(cert).digest("hex");
  process.stdout.write(JSON.stringify({ endpoint: `opc.tcp://127.0.0.1:${server.endpoints[0].port}`, thumbprint }) + "\n");

  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    try {
      const cmd = JSON.parse(line);
      if (cmd.churn) {
        state.ManualSpeed += 7;
        state.Pressure += 0.3;
      } else if (cmd.set in state) {
        state[cmd.set] = cmd.value;
      } else {
        throw new Error(`unknown command ${line}`);
      }
      process.stdout.write(JSON.stringify({ ok: true }) + "\n");
    } catch (e) {
      process.stdout.write(JSON.stringify({ error: String(e) }) + "\n");
    }
  });
  rl.on("close", async () => {
    await server.shutdown(0);
    process.exit(0);
  });
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + "\n");
  process.exit(1);
});
