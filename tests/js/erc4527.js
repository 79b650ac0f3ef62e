// Cross-checks breakglass's UR / ERC-4527 encodings with independent implementations: Keystone's
// @keystonehq/bc-ur-registry-eth (the reference ERC-4527 names), @ngraveio/bc-ur (BC-UR fountain
// decoding) and ethers 5 (EIP-712 hashing, transaction parsing, signing). Run by tests/transfer.rs with
// NODE_PATH pointing at .tools/npm/node_modules.
//
//   node erc4527.js vectors                 Keystone's own test-vector objects, encoded by its library
//   node erc4527.js decode-request  < UR    an eth-sign-request (any parts, any order): its fields, the
//                                           hash a signer signs, and the decoded typed data / tx
//   node erc4527.js sign SEED|KEY   < UR    answers a request as a Keystone would: the key at the
//                                           request's path of a BIP39 seed (or a private key 0x…),
//                                           which must be the request's address; an eth-signature UR
//   node erc4527.js decode-bundle   < UR    a breakglass-bundle UR, fountain-decoded by @ngraveio/bc-ur
'use strict';

const { URDecoder } = require('@ngraveio/bc-ur');
const {
  EthSignRequest,
  ETHSignature,
  DataType,
  CryptoKeypath,
  PathComponent,
} = require('@keystonehq/bc-ur-registry-eth');
const ethers = require('ethers');

// UUIDs without the `uuid` package (one dependency less to resolve from NODE_PATH).
const uuidBytes = (s) => Buffer.from(s.replace(/-/g, ''), 'hex');
const uuidString = (b) => {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

function readParts() {
  const text = require('fs').readFileSync(0, 'utf8');
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l) => l.toLowerCase());
}

function decodeUR(parts) {
  const d = new URDecoder();
  for (const p of parts) {
    d.receivePart(p);
    if (d.isComplete()) break;
  }
  if (!d.isComplete() || !d.isSuccess()) {
    throw new Error(`UR not complete after ${parts.length} parts: ${d.resultError()}`);
  }
  return d.resultUR();
}

// Keystone's __tests__/EthSignRequest.test.ts and EthSignature.test.ts, built with its library.
function vectors() {
  const rlpData = Buffer.from(
    'f849808609184e72a00082271094000000000000000000000000000000000000000080a47f7465737432000000000000000000000000000000000000000000000000000000600057808080',
    'hex'
  );
  const keyPath = new CryptoKeypath(
    [
      new PathComponent({ index: 44, hardened: true }),
      new PathComponent({ index: 1, hardened: true }),
      new PathComponent({ index: 1, hardened: true }),
      new PathComponent({ index: 0, hardened: false }),
      new PathComponent({ index: 1, hardened: false }),
    ],
    Buffer.from('12345678', 'hex')
  );
  const id = '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d';
  const idBuffer = uuidBytes(id);
  const withOrigin = new EthSignRequest({
    signData: rlpData,
    dataType: DataType.transaction,
    chainId: 1,
    derivationPath: keyPath,
    requestId: idBuffer,
    origin: 'metamask',
  });
  const constructed = EthSignRequest.constructETHRequest(
    rlpData,
    DataType.transaction,
    "M/44'/1'/1'/0/1",
    '12345678',
    id,
    1
  );
  const sig = Buffer.from(
    'd4f0a7bcd95bba1fbb1051885054730e3f47064288575aacc102fbbf6a9a14daa066991e360d3e3406c20c00a40973eff37c7d641e5b351ec4a99bfe86f335f713',
    'hex'
  );
  return {
    sign_request_origin: withOrigin.toUREncoder(1000).nextPart(),
    sign_request_constructed: constructed.toUREncoder(1000).nextPart(),
    signature: new ETHSignature(sig, idBuffer).toUREncoder(1000).nextPart(),
    signature_origin: new ETHSignature(sig, idBuffer, 'keystone').toUREncoder(1000).nextPart(),
  };
}

function typedDataParts(json) {
  const td = JSON.parse(json);
  const types = Object.assign({}, td.types);
  delete types.EIP712Domain;
  return { td, types };
}

function decodeRequest(parts) {
  const ur = decodeUR(parts);
  if (ur.type !== 'eth-sign-request') throw new Error(`UR type ${ur.type}`);
  const req = EthSignRequest.fromCBOR(ur.cbor);
  const signData = req.getSignData();
  const out = {
    ur_type: ur.type,
    request_id: req.getRequestId() ? uuidString(req.getRequestId()) : null,
    data_type: req.getDataType(),
    chain_id: req.getChainId(),
    derivation_path: req.getDerivationPath(),
    source_fingerprint: req.getSourceFingerprint()
      ? req.getSourceFingerprint().toString('hex')
      : null,
    address: req.getSignRequestAddress()
      ? ethers.utils.getAddress('0x' + req.getSignRequestAddress().toString('hex'))
      : null,
    origin: req.getOrigin() || null,
    sign_data: '0x' + signData.toString('hex'),
  };
  if (out.data_type === DataType.typedData) {
    const { td, types } = typedDataParts(signData.toString('utf8'));
    out.typed_data = td;
    // ethers' EIP-712 implementation: this is the safeTxHash.
    out.hash = ethers.utils._TypedDataEncoder.hash(td.domain, types, td.message);
  } else if (out.data_type === DataType.typedTransaction) {
    out.hash = ethers.utils.keccak256(signData);
    const tx = ethers.utils.parseTransaction(signData);
    out.transaction = {
      type: tx.type,
      chain_id: tx.chainId,
      nonce: tx.nonce,
      to: tx.to,
      value: tx.value.toString(),
      data: tx.data,
      gas_limit: tx.gasLimit.toString(),
      max_fee_per_gas: tx.maxFeePerGas.toString(),
      max_priority_fee_per_gas: tx.maxPriorityFeePerGas.toString(),
    };
  }
  return out;
}

async function sign(secret, parts) {
  const ur = decodeUR(parts);
  const req = EthSignRequest.fromCBOR(ur.cbor);
  const wallet = secret.startsWith('0x')
    ? new ethers.Wallet(secret)
    : ethers.Wallet.fromMnemonic(secret, 'm/' + req.getDerivationPath());
  const expected = req.getSignRequestAddress();
  if (expected && wallet.address.toLowerCase() !== '0x' + expected.toString('hex')) {
    throw new Error(`the key at ${req.getDerivationPath()} is ${wallet.address}, the request is for 0x${expected.toString('hex')}`);
  }
  const signData = req.getSignData();
  let sig;
  if (req.getDataType() === DataType.typedData) {
    const { td, types } = typedDataParts(signData.toString('utf8'));
    sig = Buffer.from((await wallet._signTypedData(td.domain, types, td.message)).slice(2), 'hex');
  } else if (req.getDataType() === DataType.typedTransaction) {
    // A typed transaction's v is the y-parity, 0 or 1, as Keystone returns it.
    const s = wallet._signingKey().signDigest(ethers.utils.keccak256(signData));
    sig = Buffer.concat([
      Buffer.from(s.r.slice(2), 'hex'),
      Buffer.from(s.s.slice(2), 'hex'),
      Buffer.from([s.recoveryParam]),
    ]);
  } else {
    throw new Error(`data type ${req.getDataType()}`);
  }
  const answer = new ETHSignature(sig, req.getRequestId(), 'keystone');
  return { address: wallet.address, part: answer.toUREncoder(400).nextPart() };
}

function decodeBundle(parts) {
  const ur = decodeUR(parts);
  const c = ur.cbor;
  // A CBOR byte string: major type 2 with a 1-, 2- or 4-byte length.
  const ai = c[0] & 0x1f;
  if (c[0] >> 5 !== 2) throw new Error('not a CBOR byte string');
  let len;
  let off;
  if (ai < 24) [len, off] = [ai, 1];
  else if (ai === 24) [len, off] = [c[1], 2];
  else if (ai === 25) [len, off] = [c.readUInt16BE(1), 3];
  else if (ai === 26) [len, off] = [c.readUInt32BE(1), 5];
  else throw new Error('unsupported length');
  if (off + len !== c.length) throw new Error('trailing bytes');
  return {
    ur_type: ur.type,
    parts_used: parts.length,
    payload: JSON.parse(c.slice(off, off + len).toString('utf8')),
  };
}

async function main() {
  const [mode, arg] = process.argv.slice(2);
  let out;
  if (mode === 'vectors') out = vectors();
  else if (mode === 'decode-request') out = decodeRequest(readParts());
  else if (mode === 'sign') out = await sign(arg, readParts());
  else if (mode === 'decode-bundle') out = decodeBundle(readParts());
  else throw new Error(`unknown mode ${mode}`);
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});

