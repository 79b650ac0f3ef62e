#!/usr/bin/env node
// Issue 18: the storage-layout fixture pairs, and OpenZeppelin upgrades-core's own verdict on each.
//
// Compiles every tests/contracts/layout/<Pair>.sol (each defines contracts V1 and V2) with the pinned solc-js
// (standard JSON: storageLayout, bytecode and the AST), then for each pair:
//   (a) writes <out dir>/<Pair>.V1.json and <Pair>.V2.json, the layout files breakglass reads: solc's
//       `{ "storage": [...], "types": {...} }` for that contract, plus what upgrades-core derives from the AST
//       and needs for the same checks: enum members (solc's layout has none) on enum types, and, when the
//       contract has ERC-7201 namespaces, `"namespaces": { "erc7201:ID": [storage items] }` with the types
//       they use (from upgrades-core's namespaced compilation, as Hardhat's and Foundry's plugins run it);
//   (b) runs upgrades-core's comparison (`getStorageUpgradeReport`, the function its plugins call) on the
//       layouts upgrades-core extracts from the same compiler output (`validate`, `getStorageLayout`), and
//       prints the verdict.
// One pair is derived rather than compiled: "EnumGrowPastByte" (see EnumGrow.sol).
// Prints one JSON document on stdout:
//   { solc, upgradesCore, pairs: [ { name, old, new, oz: { ok, ops: [ {kind, change, original, updated,
//     originalIsGap, namespace} ] } } ] }
// Usage: node layouts.js <node_modules dir> <out dir> [<fixture dir>] (run from the repository root;
// the fixture dir defaults to tests/contracts/layout).
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [nodeModules, outDir, fixtureDir = 'tests/contracts/layout'] = process.argv.slice(2);
  if (!nodeModules || !outDir) {
    console.error('usage: layouts.js <node_modules> <out dir> [<fixture dir>]');
    process.exit(2);
  }
  const req = (m) => require(path.resolve(nodeModules, m));
  const solc = req('solc');
  const core = req('@openzeppelin/upgrades-core');
  const corePkg = JSON.parse(fs.readFileSync(path.resolve(nodeModules, '@openzeppelin/upgrades-core/package.json')));
  const solcVersion = solc.version().match(/^\d+\.\d+\.\d+/)[0];

  const files = fs
    .readdirSync(fixtureDir)
    .filter((f) => f.endsWith('.sol'))
    .sort();
  if (files.length === 0) throw new Error(`no .sol files in ${fixtureDir}`);
  const sources = {};
  for (const f of files) {
    const name = path.relative(process.cwd(), path.resolve(fixtureDir, f)).split(path.sep).join('/');
    sources[name] = { content: fs.readFileSync(path.join(fixtureDir, f), 'utf8') };
  }

  const input = {
    language: 'Solidity',
    sources,
    settings: {
      evmVersion: 'cancun',
      optimizer: { enabled: false, runs: 200 },
      outputSelection: {
        '*': {
          '': ['ast'],
          '*': ['storageLayout', 'evm.bytecode.object', 'evm.bytecode.linkReferences', 'evm.methodIdentifiers'],
        },
      },
    },
  };
  const output = compile(solc, input);

  // The namespaced compilation, as @openzeppelin/hardhat-upgrades and openzeppelin-foundry-upgrades make it:
  // the same sources with a state variable injected per namespaced struct, so solc lays the structs out.
  let namespacedInput = core.makeNamespacedInput(input, output, solcVersion);
  namespacedInput = await core.trySanitizeNatSpec(namespacedInput, solcVersion);
  const namespacedOutput = compile(solc, namespacedInput);

  const decodeSrc = core.solcInputOutputDecoder(input, output);
  const runData = core.validate(output, decodeSrc, solcVersion, input, namespacedOutput);

  fs.mkdirSync(outDir, { recursive: true });
  const pairs = [];
  for (const sourceName of Object.keys(sources)) {
    const pair = path.basename(sourceName, '.sol');
    const sides = {};
    for (const side of ['V1', 'V2']) {
      const fq = `${sourceName}:${side}`;
      const solcLayout = output.contracts[sourceName]?.[side]?.storageLayout;
      if (!solcLayout) throw new Error(`${fq}: no contract ${side} in ${sourceName}`);
      const ozLayout = core.getStorageLayout(runData, core.getContractVersion(runData, fq));
      const file = path.join(outDir, `${pair}.${side}.json`);
      fs.writeFileSync(file, JSON.stringify(breakglassLayout(solcLayout, ozLayout), null, 2) + '\n');
      sides[side] = { file, ozLayout };
    }
    pairs.push(judge(core, pair, sides.V1, sides.V2));
    if (pair === 'EnumGrow') {
      // Solidity 0.8 refuses enums of more than 256 members, so growth past a byte cannot be compiled with
      // the pinned solc: derive it from V2 (256 members) as solc 0.7 laid a 257-member enum out (two bytes,
      // the next variable packed after it), the same edit on both tools' inputs.
      const grown = (layout) => growEnumPastByte(layout, 'Big', 'M256');
      const file = path.join(outDir, 'EnumGrowPastByte.V2.json');
      fs.writeFileSync(file, JSON.stringify(grown(JSON.parse(fs.readFileSync(sides.V2.file))), null, 2) + '\n');
      pairs.push(judge(core, 'EnumGrowPastByte', sides.V2, { file, ozLayout: grown(sides.V2.ozLayout) }));
    }
  }
  process.stdout.write(
    JSON.stringify({ solc: solc.version(), upgradesCore: corePkg.version, pairs }, null, 2) + '\n',
  );
}

function judge(core, name, v1, v2) {
  const report = core.getStorageUpgradeReport(v1.ozLayout, v2.ozLayout, core.withValidationDefaults({}));
  return {
    name,
    old: v1.file,
    new: v2.file,
    oz: { ok: report.ok, ops: report.ops.map(describeOp), explain: report.ok ? '' : report.explain(false) },
  };
}

// A copy of `layout` where enum `enumName` gained `member` and so takes two bytes; every variable packed
// after it in the same slot moves by the extra byte (there is room: the fixture packs one uint8 after it).
function growEnumPastByte(layout, enumName, member) {
  const out = JSON.parse(JSON.stringify(layout));
  const id = Object.keys(out.types).find((k) => k.startsWith(`t_enum(${enumName})`));
  if (id === undefined) throw new Error(`no enum ${enumName} in layout`);
  out.types[id].members = [...out.types[id].members, member];
  out.types[id].numberOfBytes = '2';
  const item = out.storage.find((i) => i.type === id);
  for (const other of out.storage) {
    if (other !== item && other.slot === item.slot && other.offset > item.offset) other.offset += 1;
  }
  return out;
}

function compile(solc, input) {
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new Error('solc: ' + errors.map((e) => e.formattedMessage || e.message).join('\n'));
  }
  return output;
}

// solc's layout for the contract, plus enum members and namespaces from upgrades-core's extraction.
function breakglassLayout(solcLayout, ozLayout) {
  const types = { ...(solcLayout.types || {}) };
  for (const [id, t] of Object.entries(ozLayout.types || {})) {
    if (!(id in types)) {
      // A type only the namespaced compilation or the AST knows (used inside a namespace).
      const entry = { label: t.label };
      if (t.numberOfBytes !== undefined) entry.numberOfBytes = t.numberOfBytes;
      if (t.members !== undefined) entry.members = t.members;
      if (t.underlying !== undefined) entry.underlying = t.underlying;
      types[id] = entry;
    } else if (id.startsWith('t_enum(') && types[id].members === undefined && t.members !== undefined) {
      types[id] = { ...types[id], members: t.members };
    }
  }
  const layout = { storage: solcLayout.storage, types };
  const namespaces = ozLayout.namespaces || {};
  if (Object.keys(namespaces).length > 0) {
    layout.namespaces = {};
    for (const [id, items] of Object.entries(namespaces)) {
      layout.namespaces[id] = items.map((i) => {
        const item = { contract: i.contract, label: i.label, type: i.type };
        if (i.slot !== undefined) item.slot = i.slot;
        if (i.offset !== undefined) item.offset = i.offset;
        return item;
      });
    }
  }
  return layout;
}

function isGap(field) {
  return (
    field !== undefined &&
    typeof field.type === 'object' &&
    field.type.head === 't_array' &&
    (field.label === '__gap' || field.label.startsWith('__gap_'))
  );
}

function describeOp(op) {
  return {
    kind: op.kind,
    change: op.change?.kind ?? null,
    original: op.original?.label ?? null,
    updated: op.updated?.label ?? null,
    originalIsGap: isGap(op.original),
    namespace: op.namespace ?? null,
  };
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
