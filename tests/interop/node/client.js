// SPDX-License-Identifier: MIT
// An ordinary @grpc/grpc-js client for the mpktest.Echo service (../echo.proto).
// Knows nothing about mpklink.
//
//   node client.js --target HOST:PORT [--unary N] [--stream N] [--size S]
//                  [--seed S] [--proto FILE]
//
// Checks every response; prints "OK unary=N stream=N bytes=TOTAL" and exits 0,
// or an error and exits 1. The modules come from ./node_modules or NODE_PATH
// (setup.sh installs them from package-lock.json).
'use strict';

const path = require('path');

function die(msg, code = 1) {
  process.stderr.write(`node client.js: ${msg}\n`);
  process.exit(code);
}

let grpc, protoLoader;
try {
  grpc = require('@grpc/grpc-js');
  protoLoader = require('@grpc/proto-loader');
} catch (e) {
  die(`cannot load @grpc/grpc-js / @grpc/proto-loader (${e.message}); ` +
      'run tests/interop/node/setup.sh DIR and set NODE_PATH=DIR/node_modules');
}

function parseArgs(argv) {
  const o = {
    target: '', unary: 0, stream: 0, size: 128, seed: 1, deadline: 120,
    proto: path.join(__dirname, '..', 'echo.proto'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1];
    if (v === undefined) die(`missing value for ${k}`, 2);
    switch (k) {
      case '--target': o.target = v; break;
      case '--proto': o.proto = v; break;
      case '--unary': case '--stream': case '--size': case '--seed': case '--deadline': {
        if (!/^\d+$/.test(v)) die(`bad value for ${k}: ${v}`, 2);
        o[k.slice(2)] = Number(v);
        break;
      }
      default: die(`unknown argument ${k}`, 2);
    }
  }
  if (!o.target) die('--target is required', 2);
  if (!o.unary && !o.stream) die('nothing to do: give --unary or --stream', 2);
  return o;
}

// xorshift32: deterministic pseudo-random payloads.
function makeRandom(seed) {
  let s = (seed >>> 0) || 0x9e3779b9;
  return (size) => {
    const b = Buffer.allocUnsafe(size);
    for (let j = 0; j < size; j++) {
      s ^= s << 13; s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5; s >>>= 0;
      b[j] = s & 0xff;
    }
    return b;
  };
}

// The server-stream payload; the same formula as echo_pattern.h.
function pattern(seq, size) {
  const b = Buffer.allocUnsafe(size);
  const s = (seq * 31) >>> 0;
  for (let j = 0; j < size; j++) b[j] = (s + j * 7 + (j >> 8)) & 0xff;
  return b;
}

function where(want, got) {
  if (want.length !== got.length) return `payload size ${got.length}, expected ${want.length}`;
  let j = 0;
  while (j < want.length && want[j] === got[j]) j++;
  return `payload differs at byte ${j} of ${want.length}`;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const def = protoLoader.loadSync(o.proto, {
    keepCase: true, longs: Number, defaults: true,
  });
  const { mpktest } = grpc.loadPackageDefinition(def);
  const opts = {
    'grpc.max_receive_message_length': 64 << 20,
    'grpc.max_send_message_length': 64 << 20,
  };
  const client = new mpktest.Echo(o.target, grpc.credentials.createInsecure(), opts);
  const deadline = () => new Date(Date.now() + o.deadline * 1000);

  await new Promise((resolve, reject) => {
    client.waitForReady(new Date(Date.now() + 10000), (err) => {
      if (err) reject(new Error(`cannot connect to ${o.target} within 10 s: ${err.message}`));
      else resolve();
    });
  });

  const rand = makeRandom(o.seed);
  let total = 0;
  let phase = 'unary';
  try {
    for (let i = 0; i < o.unary; i++) {
      const payload = rand(o.size);
      const r = await new Promise((resolve, reject) => {
        client.Unary({ seq: i, payload }, { deadline: deadline() },
          (err, resp) => (err ? reject(err) : resolve(resp)));
      });
      if (Number(r.seq) !== i) throw new Error(`unary call ${i}: seq ${r.seq} came back`);
      if (!payload.equals(r.payload)) throw new Error(`unary call ${i}: ${where(payload, r.payload)}`);
      total += r.payload.length;
    }

    phase = 'stream';
    if (o.stream) {
      let n = 0;
      await new Promise((resolve, reject) => {
        const call = client.ServerStream({ count: o.stream, size: o.size }, { deadline: deadline() });
        call.on('data', (m) => {
          const want = pattern(n, o.size);
          let err = null;
          if (Number(m.seq) !== n) err = `stream message ${n}: seq ${m.seq}`;
          else if (!want.equals(m.payload)) err = `stream message ${n}: ${where(want, m.payload)}`;
          if (err) {
            call.cancel();
            reject(new Error(err));
            return;
          }
          total += m.payload.length;
          n++;
        });
        call.on('error', reject);
        call.on('end', resolve);
      });
      if (n !== o.stream) throw new Error(`server stream ended after ${n} messages, expected ${o.stream}`);
    }
  } catch (e) {
    client.close();
    die(`FAIL (${phase}, target ${o.target}): ${e.message}`);
  }
  client.close();
  process.stdout.write(`OK unary=${o.unary} stream=${o.stream} bytes=${total}\n`);
}

main().catch((e) => die(e.message));
