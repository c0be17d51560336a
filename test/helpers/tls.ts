/**
 * A test PKI made at test time with Debian's openssl CLI (Node's crypto
 * cannot sign X.509): a CA, a second CA nobody trusts, server certificates
 * (good for 127.0.0.1/localhost, for another name, expired) and client
 * certificates for host tags. EC P-256 keys: quick to make.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export interface TestPki {
  dir: string;
  ca: string;
  /** A CA that signs nothing the tests trust. */
  otherCa: string;
  server: { cert: string; key: string };
  /** Signed by `ca`, but for other.example only. */
  wrongName: { cert: string; key: string };
  /** Signed by `ca`, valid in 2020 only. */
  expired: { cert: string; key: string };
  /** Signed by `otherCa`, for 127.0.0.1/localhost. */
  untrusted: { cert: string; key: string };
  /** Client certificates signed by `ca`: CN web1 (+ DNS SAN web1.example), CN web2. */
  web1: { cert: string; key: string };
  web2: { cert: string; key: string };
  /** A client certificate for web1 signed by `otherCa`. */
  rogue: { cert: string; key: string };
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function key(dir: string, name: string): string {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  return path.join(dir, `${name}.key`);
}

function makeCa(dir: string, name: string, cn: string): void {
  key(dir, name);
  openssl(dir, ['req', '-x509', '-new', '-key', `${name}.key`, '-out', `${name}.pem`, '-days', '30', '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

/** A leaf signed by `ca` (x509 -req), with `san` and `usage` (serverAuth / clientAuth). */
function leaf(dir: string, ca: string, name: string, cn: string, san: string, usage: string): { cert: string; key: string } {
  key(dir, name);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${usage}\nbasicConstraints=CA:FALSE\n`);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '30', '-extfile', `${name}.ext`]);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

/** An expired leaf: `openssl ca` takes explicit start and end dates (x509 -days cannot go back in time). */
function expiredLeaf(dir: string, ca: string, name: string): { cert: string; key: string } {
  key(dir, name);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost']);
  const db = path.join(dir, 'ca-db');
  fs.mkdirSync(db, { recursive: true });
  fs.writeFileSync(path.join(db, 'index.txt'), '');
  fs.writeFileSync(path.join(db, 'serial'), '1000\n');
  fs.writeFileSync(
    path.join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      `dir = ${db}`,
      'database = $dir/index.txt',
      'serial = $dir/serial',
      'new_certs_dir = $dir',
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      'copy_extensions = none',
      'x509_extensions = ext',
      '[any]',
      'commonName = supplied',
      '[ext]',
      'subjectAltName = DNS:localhost,IP:127.0.0.1',
      'extendedKeyUsage = serverAuth',
      'basicConstraints = CA:FALSE',
      '',
    ].join('\n'),
  );
  openssl(dir, ['ca', '-batch', '-config', 'ca.cnf', '-cert', `${ca}.pem`, '-keyfile', `${ca}.key`, '-in', `${name}.csr`, '-out', `${name}.pem`, '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-notext']);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

/** Make the whole PKI in `dir` (a few hundred ms). */
export function makeTestPki(dir: string): TestPki {
  makeCa(dir, 'ca', 'spread-pipe test CA');
  makeCa(dir, 'other-ca', 'nobody trusts this CA');
  return {
    dir,
    ca: path.join(dir, 'ca.pem'),
    otherCa: path.join(dir, 'other-ca.pem'),
    server: leaf(dir, 'ca', 'server', 'localhost', 'DNS:localhost,IP:127.0.0.1', 'serverAuth'),
    wrongName: leaf(dir, 'ca', 'wrong-name', 'other.example', 'DNS:other.example', 'serverAuth'),
    expired: expiredLeaf(dir, 'ca', 'expired'),
    untrusted: leaf(dir, 'other-ca', 'untrusted', 'localhost', 'DNS:localhost,IP:127.0.0.1', 'serverAuth'),
    web1: leaf(dir, 'ca', 'web1', 'web1', 'DNS:web1.example', 'clientAuth'),
    web2: leaf(dir, 'ca', 'web2', 'web2', 'DNS:web2', 'clientAuth'),
    rogue: leaf(dir, 'other-ca', 'rogue', 'web1', 'DNS:web1', 'clientAuth'),
  };
}

/**
 * The PKI of one test file: made before its tests (beforeAll) in a temporary
 * directory of its own (`prefix` names it), removed after them. The object
 * returned is filled in by then.
 */
export function testPkiForFile(prefix: string): TestPki {
  const pki = {} as TestPki;
  beforeAll(() => {
    Object.assign(pki, makeTestPki(fs.mkdtempSync(path.join(os.tmpdir(), prefix))));
  });
  afterAll(() => {
    if (pki.dir) fs.rmSync(pki.dir, { recursive: true, force: true });
  });
  return pki;
}
