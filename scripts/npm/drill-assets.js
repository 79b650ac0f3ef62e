#!/usr/bin/env node
// Writes the contracts the drill deploys, taken from the pinned npm packages and the project's compiled
// test contracts, as one JSON file that the binary embeds (assets/drill-contracts.json, through include_str! in src/drill.rs), so an
// installed `breakglass drill` needs nothing but anvil. Never edit the output by hand: the test
// `drill_assets_are_the_pinned_packages` regenerates it and compares byte for byte.
// Usage: node drill-assets.js <node_modules dir> <compiled contracts dir> <out file>
'use strict';
const fs = require('fs');
const path = require('path');

const [nodeModules, contractsDir, out] = process.argv.slice(2);
if (!nodeModules || !contractsDir || !out) {
  console.error('usage: drill-assets.js <node_modules> <contracts dir> <out file>');
  process.exit(2);
}
const pkgVersion = (name) =>
  JSON.parse(fs.readFileSync(path.join(nodeModules, name, 'package.json'), 'utf8')).version;
const hex = (s) => (s.startsWith('0x') ? s : '0x' + s).toLowerCase();

const safe = '@safe-global/safe-contracts';
const oz = '@openzeppelin/contracts';
const npm = [
  ['Safe', safe, 'build/artifacts/contracts/Safe.sol/Safe.json'],
  ['SafeProxyFactory', safe, 'build/artifacts/contracts/proxies/SafeProxyFactory.sol/SafeProxyFactory.json'],
  ['CompatibilityFallbackHandler', safe, 'build/artifacts/contracts/handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json'],
  ['MultiSendCallOnly', safe, 'build/artifacts/contracts/libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json'],
  ['TransparentUpgradeableProxy', oz, 'build/contracts/TransparentUpgradeableProxy.json'],
  ['ERC1967Proxy', oz, 'build/contracts/ERC1967Proxy.json'],
  ['TimelockController', oz, 'build/contracts/TimelockController.json'],
];
const project = ['PausablePool', 'PausablePoolV2', 'UUPSPool', 'UUPSPoolV2'];

const contracts = {};
for (const [name, pkg, rel] of npm) {
  const a = JSON.parse(fs.readFileSync(path.join(nodeModules, pkg, rel), 'utf8'));
  contracts[name] = {
    source: `${pkg}@${pkgVersion(pkg)}/${rel}`,
    bytecode: hex(a.bytecode),
    deployedBytecode: hex(a.deployedBytecode),
  };
}
for (const name of project) {
  const a = JSON.parse(fs.readFileSync(path.join(contractsDir, `${name}.json`), 'utf8'));
  if (!a.storageLayout) throw new Error(`${name}.json has no storageLayout`);
  // AST ids depend on which other files were compiled with it: they say nothing about the layout.
  const storageLayout = {
    storage: a.storageLayout.storage.map(({ astId, ...rest }) => rest),
    types: a.storageLayout.types,
  };
  contracts[name] = {
    source: `${a.sourceName} (solc-js ${pkgVersion('solc')}, project contract)`,
    bytecode: hex(a.bytecode),
    deployedBytecode: hex(a.deployedBytecode),
    storageLayout,
  };
}
const text = JSON.stringify({ format: 'breakglass/drill-assets@1', contracts }, null, 1) + '\n';
fs.writeFileSync(out, text);
