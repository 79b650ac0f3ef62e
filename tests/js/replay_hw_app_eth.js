// Replays APDU sessions recorded from breakglass through Ledger's own JavaScript client.
//
//   NODE_PATH=.tools/npm/node_modules node tests/js/replay_hw_app_eth.js CASES.json
//
// CASES.json: [{ "name": "...", "record": "=> e004…\n<= 01…9000\n…",
//                "calls": [{ "method": "signTransaction", "args": [...], "status": 27264? }] }]
// `method` is an @ledgerhq/hw-app-eth `Eth` method (getAddress, getAppConfiguration, signTransaction,
// signPersonalMessage, signEIP712HashedMessage) or "send" (raw `transport.send(cla, ins, p1, p2, dataHex)`);
// `status`, when present, is the status word the call must fail with (TransportStatusError).
//
// Each case runs twice:
//  1. capture: a transport that answers from the record in order and logs every APDU hw-app-eth sends,
//     so a mismatch can be reported byte for byte;
//  2. replay: `openTransportReplayer(RecordStore.fromString(record))`, Ledger's own mock, which throws
//     RecordStoreWrongAPDU on the first APDU that differs; afterwards the queue must be empty.
// Prints one JSON array of results on stdout: { name, ok, error, sent, results }.
// Lines starting with '#' in a record are comments (RecordStore itself does not accept them).
"use strict";

const fs = require("fs");
const { openTransportReplayer, RecordStore } = require("@ledgerhq/hw-transport-mocker");
const Transport = require("@ledgerhq/hw-transport").default;
const Eth = require("@ledgerhq/hw-app-eth").default;

function stripComments(record) {
  return record
    .split("\n")
    .filter((l) => !l.trim().startsWith("#"))
    .join("\n");
}

function answersOf(record) {
  return stripComments(record)
    .split("\n")
    .map((l) => l.replace(/ /g, ""))
    .filter((l) => l.startsWith("<="))
    .map((l) => l.slice(2));
}

// Answers APDU i with the record's answer i; when hw-app-eth sends more APDUs than the record holds,
// intermediate ones get 9000 and the last recorded answer is repeated, so the call still completes
// and every APDU it sends is logged.
class CaptureTransport extends Transport {
  constructor(answers) {
    super();
    this.answers = answers;
    this.sent = [];
  }
  exchange(apdu) {
    const i = this.sent.length;
    this.sent.push(apdu.toString("hex"));
    const a = i < this.answers.length ? this.answers[i] : this.answers[this.answers.length - 1] || "9000";
    return Promise.resolve(Buffer.from(a, "hex"));
  }
  setScrambleKey() {}
  close() {
    return Promise.resolve();
  }
}

function plain(v) {
  if (Buffer.isBuffer(v)) return v.toString("hex");
  if (typeof v === "bigint") return v.toString();
  if (v && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) o[k] = plain(v[k]);
    return o;
  }
  return v;
}

async function runCalls(transport, calls) {
  const eth = new Eth(transport);
  const results = [];
  for (const c of calls) {
    let value;
    let status = null;
    try {
      if (c.method === "send") {
        const [cla, ins, p1, p2, dataHex] = c.args;
        value = await transport.send(cla, ins, p1, p2, Buffer.from(dataHex, "hex"), [0x9000]);
      } else {
        value = await eth[c.method](...c.args);
      }
    } catch (e) {
      if (e && e.name === "TransportStatusError") {
        status = e.statusCode;
      } else if (e && e.name === "EthAppPleaseEnableContractData") {
        status = 0x6a80; // hw-app-eth's own name for 6a80 on SIGN
      } else {
        throw e;
      }
    }
    const want = c.status === undefined || c.status === null ? null : c.status;
    if (status !== want) {
      throw new Error(
        `${c.method}: expected status ${want === null ? "9000" : want.toString(16)}, got ${
          status === null ? "9000" : status.toString(16)
        }`
      );
    }
    results.push({ method: c.method, status, value: plain(value) });
  }
  return results;
}

async function runCase(c) {
  const out = { name: c.name, ok: false, error: null, sent: [], results: [] };
  const record = stripComments(c.record);
  try {
    const cap = new CaptureTransport(answersOf(record));
    try {
      await runCalls(cap, c.calls);
    } catch (e) {
      // the replay below reports; the capture only collects what was sent
    }
    out.sent = cap.sent;
    const store = RecordStore.fromString(record);
    const transport = await openTransportReplayer(store);
    out.results = await runCalls(transport, c.calls);
    store.ensureQueueEmpty();
    out.ok = true;
  } catch (e) {
    out.error = `${(e && e.name) || "Error"}: ${(e && e.message) || String(e)}`;
    if (e && e.expectedAPDU) {
      out.expected_apdu = e.expectedAPDU;
      out.got_apdu = e.gotAPDU;
    }
  }
  return out;
}

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: replay_hw_app_eth.js CASES.json");
    process.exit(2);
  }
  const cases = JSON.parse(fs.readFileSync(file, "utf8"));
  const results = [];
  for (const c of cases) results.push(await runCase(c));
  process.stdout.write(JSON.stringify(results, null, 1) + "\n");
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
