#!/usr/bin/env node
// Compiles the project's test contracts with solc-js (standard JSON) into Hardhat-style
// artifacts: <out>/<ContractName>.json = {contractName, sourceName, abi, bytecode, deployedBytecode,
// storageLayout}.
// Usage: node compile-contracts.js <node_modules dir> <out dir> <file.sol>...
// Sources are named by their path relative to the current directory (the repo root);
// imports resolve against the current directory first, then <node_modules dir>.
'use strict';
const fs = require('fs');
const path = require('path');

const [nodeModules, outDir, ...files] = process.argv.slice(2);
if (!nodeModules || !outDir || files.length === 0) {
  console.error('usage: compile-contracts.js <node_modules> <out dir> <file.sol>...');
  process.exit(2);
}
const solc = require(path.resolve(nodeModules, 'solc'));

const sources = {};
for (const f of files) {
  const name = path.relative(process.cwd(), path.resolve(f)).split(path.sep).join('/');
  sources[name] = { content: fs.readFileSync(f, 'utf8') };
}

function findImports(name) {
  for (const base of [process.cwd(), path.resolve(nodeModules)]) {
    const p = path.resolve(base, name);
    if (fs.existsSync(p)) return { contents: fs.readFileSync(p, 'utf8') };
  }
  return { error: `import not found: ${name}` };
}

const input = {
  language: 'Solidity',
  sources,
  settings: {
    // Pinned so the bytecode does not depend on the compiler's or anvil's default hardfork.
    evmVersion: 'cancun',
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'storageLayout'] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
let failed = false;
for (const e of output.errors || []) {
  if (e.severity === 'error') failed = true;
  // Show errors always; warnings only for our own sources (library warnings are noise).
  const own = e.sourceLocation && sources[e.sourceLocation.file];
  if (e.severity === 'error' || own) console.error(e.formattedMessage || e.message);
}
if (failed) process.exit(1);

fs.mkdirSync(outDir, { recursive: true });
let n = 0;
for (const sourceName of Object.keys(sources)) {
  for (const [contractName, c] of Object.entries(output.contracts[sourceName] || {})) {
    const artifact = {
      _format: 'hh-sol-artifact-1',
      contractName,
      sourceName,
      compiler: solc.version(),
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      linkReferences: {},
      deployedLinkReferences: {},
      // solc's storage layout (issue 18: upgrades carry the layouts of both implementations).
      storageLayout: c.storageLayout,
    };
    fs.writeFileSync(path.join(outDir, `${contractName}.json`), JSON.stringify(artifact, null, 2) + '\n');
    n++;
  }
}
console.log(`compiled ${n} contracts with solc ${solc.version()}`);
