// An OPC UA server built with node-opcua, shaped unlike plcwatch's own
// simulator, for interoperability tests of the OPC UA connector.
//
// usage: node server.js PORT PKI_DIR [OPTIONS_JSON]
// OPTIONS_JSON switches on behaviours met in the field (all optional):
//   "maxNodesPerRead": N, "maxNodesPerBrowse": N  advertise (and enforce) OperationLimits
//   "params": N               N more writable Doubles under BoilerHouse/Params
//   "dupNames": true          a "Mode" under BoilerHouse in the own namespace and one in urn:elsewhere:vendor
//   "shiftNamespaces": true   register an extra namespace first, so urn:elsewhere:vendor gets another index
//   "twoRefs": true           BoilerHouse/Area/Dosing reached by HasComponent and by Organizes
//   "badStatus": "BadWaitingForInitialData"  Limits/BadSetpoint answers that status (else Good, 42)
//   "emptyValue": true        Limits/BadSetpoint answers Good with an empty (Null) Variant
//   "buildDate": ISO date     BuildInfo.BuildDate (default 2025-01-01)
//   "numericIds": N           BoilerHouse/Numbered with numeric NodeIds from 5000 + N, as servers that
//                             number their nodes at start give them (another N: a restart that renumbered):
//                             setpoints SP1, SP2 and two "Temp" in the own namespace (10 and 20); and
//                             BoilerHouse/Line1 and Line2 (ids s=Line1, s=Line2), each with a numbered SP1
//   "pageReferences": N       answer at most N references per node in a Browse, the rest through
//                             continuation points (as servers with a per-node limit of their own do)
//   "browseNext": "forever"   every BrowseNext answers a fresh continuation point and no references
//   "browseNext": "invalid"   every BrowseNext answers BadContinuationPointInvalid
//   "curve": N                Limits/Curve: a writable array of N Doubles (element i is i/2)
//   "curveChange": I          element I of Curve is -1 instead
//   "maxMessageSize": BYTES   the largest message the server sends (its transport limit)
// The same PKI_DIR gives the same server certificate on every start.
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
  OPCUAServer, OPCUACertificateManager, Variant, DataType, DataValue, StatusCodes, MessageSecurityMode, SecurityPolicy, nodesets,
  BrowseNextResponse, BrowseResult, VariantArrayType,
} = require("node-opcua");

async function main() {
  const [port, pki, optionsJSON] = process.argv.slice(2);
  const opt = JSON.parse(optionsJSON || "{}");
  const operationLimits = {};
  if (opt.maxNodesPerRead) operationLimits.maxNodesPerRead = opt.maxNodesPerRead;
  if (opt.maxNodesPerBrowse) operationLimits.maxNodesPerBrowse = opt.maxNodesPerBrowse;
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
    buildInfo: {
      productName: "BoilerHouse Controller", manufacturerName: "Elsewhere Automation", softwareVersion: "7.1.0", buildNumber: "42",
      buildDate: new Date(opt.buildDate || "2025-01-01T00:00:00Z"),
    },
    serverCapabilities: { operationLimits },
    transportSettings: opt.maxMessageSize ? {
      adjustTransportLimits: () => ({ receiveBufferSize: 8192, sendBufferSize: 8192, maxMessageSize: opt.maxMessageSize,
        maxChunkCount: Math.ceil(opt.maxMessageSize / 8192) }),
    } : undefined,
  });
  await server.initialize();

  const state = {
    Checksum: "c0ffee01", Revision: "R12",
    ReadOnlyLimit: 180.0, SteamSetpoint: 12.5,
    ManualSpeed: 900.0, Pressure: 11.8,
    ProgramHash: "a1b2c3", Label: "Käse", Recipe: "00017f80ff", Mode: 1, Setpoint: 0.8,
  };
  const types = { Checksum: DataType.String, Revision: DataType.String, ProgramHash: DataType.String, Mode: DataType.Int32 };
  const space = server.engine.addressSpace;
  if (opt.shiftNamespaces) space.registerNamespace("urn:elsewhere:spare");
  const vendor = opt.dupNames ? space.registerNamespace("urn:elsewhere:vendor") : null;
  const ns = space.getOwnNamespace();
  // Explicit string node ids: the same on every start whatever the options.
  const boiler = ns.addObject({ organizedBy: space.rootFolder.objects, browseName: "BoilerHouse", nodeId: "s=BoilerHouse" });
  const folder = (name) => ns.addObject({ componentOf: boiler, browseName: name, nodeId: `s=BoilerHouse.${name}` });
  const logic = folder("Logic");
  const limits = folder("Limits");
  const drive = folder("Drive");
  const meas = folder("Measurements");
  const variable = (parent, name, writable, space) => (space || ns).addVariable({
    componentOf: parent,
    browseName: name,
    nodeId: `s=${parent.browseName.name}.${name}`,
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
  variable(drive, "ProgramHash", false); // code identity outside any folder named Programs

  // Text as servers send it: a LocalizedText with its locale, a ByteString.
  const text = folder("Text");
  ns.addVariable({ componentOf: text, browseName: "Label", nodeId: "s=Text.Label", dataType: DataType.LocalizedText,
    accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite", minimumSamplingInterval: 1000,
    value: { get: () => new Variant({ dataType: DataType.LocalizedText, value: { locale: "de-DE", text: state.Label } }) } });
  ns.addVariable({ componentOf: text, browseName: "Recipe", nodeId: "s=Text.Recipe", dataType: DataType.ByteString,
    accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite", minimumSamplingInterval: 1000,
    value: { get: () => new Variant({ dataType: DataType.ByteString, value: Buffer.from(state.Recipe, "hex") }) } });

  // A writable setpoint that answers a Bad status, as servers do right
  // after a restart or while their link to the PLC is down.
  ns.addVariable({ componentOf: limits, browseName: "BadSetpoint", nodeId: "s=Limits.BadSetpoint", dataType: DataType.Double,
    accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite", minimumSamplingInterval: 1000,
    value: { timestamped_get: () => opt.badStatus
      ? new DataValue({ statusCode: StatusCodes[opt.badStatus] })
      : opt.emptyValue
        ? new DataValue({ statusCode: StatusCodes.Good, value: new Variant({ dataType: DataType.Null }) })
        : new DataValue({ statusCode: StatusCodes.Good, value: { dataType: DataType.Double, value: 42 } }) } });

  if (opt.params) {
    const params = folder("Params");
    for (let i = 0; i < opt.params; i++) {
      const name = `P${String(i).padStart(4, "0")}`;
      state[name] = i + 0.5;
      variable(params, name, true);
    }
  }
  if (opt.dupNames) {
    variable(boiler, "Mode", true);
    vendor.addVariable({ componentOf: boiler, browseName: "Mode", nodeId: "s=Vendor.Mode", dataType: DataType.Int32,
      accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite", minimumSamplingInterval: 1000,
      value: { get: () => new Variant({ dataType: DataType.Int32, value: 2 }) } });
  }
  if (opt.twoRefs) {
    const area = ns.addObject({ componentOf: boiler, browseName: "Area", nodeId: "s=Area" });
    const dosing = ns.addObject({ componentOf: area, browseName: "Dosing", nodeId: "s=Dosing" });
    area.addReference({ referenceType: "Organizes", nodeId: dosing.nodeId });
    variable(dosing, "Setpoint", true);
  }

  if (opt.numericIds !== undefined) {
    let next = 5000 + opt.numericIds;
    const id = () => `i=${next++}`;
    const numbered = ns.addObject({ componentOf: boiler, browseName: "Numbered", nodeId: id() });
    const num = (name, value) => ns.addVariable({ componentOf: numbered, browseName: name, nodeId: id(), dataType: DataType.Double,
      accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite", minimumSamplingInterval: 1000,
      value: { get: () => new Variant({ dataType: DataType.Double, value }) } });
    num("SP1", 1.5);
    num("SP2", 2.5);
    num("Temp", 10);
    num("Temp", 20);
    for (const [line, value] of [["Line1", 1.5], ["Line2", 3.5]]) {
      const f = ns.addObject({ componentOf: boiler, browseName: line, nodeId: `s=${line}` });
      ns.addVariable({ componentOf: f, browseName: "SP1", nodeId: id(), dataType: DataType.Double,
        accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite", minimumSamplingInterval: 1000,
        value: { get: () => new Variant({ dataType: DataType.Double, value }) } });
    }
  }

  if (opt.curve) {
    const curve = new Float64Array(opt.curve).map((_, i) => i / 2);
    if (opt.curveChange !== undefined) curve[opt.curveChange] = -1;
    ns.addVariable({ componentOf: limits, browseName: "Curve", nodeId: "s=Limits.Curve", dataType: DataType.Double,
      valueRank: 1, arrayDimensions: [opt.curve],
      accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite", minimumSamplingInterval: 1000,
      value: { get: () => new Variant({ dataType: DataType.Double, arrayType: VariantArrayType.Array, value: curve }) } });
  }
  if (opt.pageReferences) {
    const browse = server._on_BrowseRequest.bind(server);
    server._on_BrowseRequest = (message, channel) => {
      const req = message.request;
      if (!req.requestedMaxReferencesPerNode || req.requestedMaxReferencesPerNode > opt.pageReferences) {
        req.requestedMaxReferencesPerNode = opt.pageReferences;
      }
      return browse(message, channel);
    };
  }
  if (opt.browseNext) {
    let n = 0;
    server._on_BrowseNextRequest = (message, channel) => {
      server._apply_on_SessionObject(BrowseNextResponse, message, channel, (session, sendResponse) => {
        const results = (message.request.continuationPoints || []).map(() => opt.browseNext === "invalid"
          ? new BrowseResult({ statusCode: StatusCodes.BadContinuationPointInvalid })
          : new BrowseResult({ statusCode: StatusCodes.Good, continuationPoint: Buffer.from(`page-${++n}`), references: [] }));
        sendResponse(new BrowseNextResponse({ results }));
      });
    };
  }

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
