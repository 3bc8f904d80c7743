// Test keys and a self-signed X.509 certificate made with node:crypto alone, so that the token
// tests need no `openssl` binary. Only what the tests use: EC keys and an ECDSA-SHA256 certificate.

import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";

/** An EC private key as PEM: `sec1` is `openssl ecparam -genkey`'s form, `pkcs8` `genpkey`'s. */
export function ecPrivateKeyPem(curve: "P-256" | "P-384", type: "sec1" | "pkcs8"): string {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: curve });
  return privateKey.export({ type, format: "pem" }) as string;
}

/**
 * A self-signed certificate for a fresh P-256 key, valid from an hour ago for `days` days, as
 * `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=<cn>` makes one.
 */
export function selfSignedEcCertificate(cn: string, days = 1): { keyPem: string; certPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ecdsaWithSha256 = seq(tlv(0x06, [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));
  const name = seq(set(seq(tlv(0x06, [0x55, 0x04, 0x03]), tlv(0x0c, utf8(cn)))));
  const notBefore = new Date(Date.now() - 3_600_000);
  const notAfter = new Date(notBefore.getTime() + days * 86_400_000);
  const serial = crypto.getRandomValues(new Uint8Array(8));
  serial[0] &= 0x7f; // a positive INTEGER
  const tbs = seq(
    tlv(0xa0, tlv(0x02, [2])), // [0] EXPLICIT version v3
    tlv(0x02, serial),
    ecdsaWithSha256,
    name,
    seq(utcTime(notBefore), utcTime(notAfter)),
    name,
    spki(publicKey),
  );
  const signature = sign("sha256", tbs, privateKey); // DER-encoded ECDSA signature
  const cert = seq(tbs, ecdsaWithSha256, tlv(0x03, concat([0], signature)));
  return {
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    certPem: pem("CERTIFICATE", cert),
  };
}

type Bytes = Uint8Array | number[];

function concat(...parts: Bytes[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One DER tag-length-value; lengths in short or long form. */
function tlv(tag: number, content: Bytes): Uint8Array {
  const n = content.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return concat([tag], length, content);
}

const seq = (...parts: Bytes[]) => tlv(0x30, concat(...parts));
const set = (...parts: Bytes[]) => tlv(0x31, concat(...parts));
const utf8 = (text: string) => new TextEncoder().encode(text);
const spki = (key: KeyObject) => new Uint8Array(key.export({ type: "spki", format: "der" }));

/** UTCTime `YYMMDDHHMMSSZ` (years 1950–2049). */
function utcTime(date: Date): Uint8Array {
  return tlv(0x17, utf8(date.toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z"));
}

function pem(label: string, der: Uint8Array): string {
  const b64 = btoa(String.fromCharCode(...der)).replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
