// Owns Docker registry tokens: ES256 signing keys, issuing access/refresh JWTs, verifying them.
// Implements distribution's docs/spec/auth/jwt.md (claims, `access`) and token.md (response fields).

import * as jose from "jose";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readAccessClaim, type ResourceActions } from "./scope.ts";

export interface SigningKey {
  privateKey: CryptoKey;
  /** Imported once: it checks every refresh token and every token the server issued. */
  publicKey: CryptoKey;
  publicJwk: jose.JWK;
  /** RFC 7638 thumbprint of the public key, sent as the JWT `kid`. */
  kid: string;
}

/** Reads a PEM EC P-256 private key (PKCS#8 or SEC1), or generates one when `pem` is absent. */
export async function loadSigningKey(pem?: string): Promise<SigningKey> {
  let privateJwk: jose.JWK;
  if (pem === undefined) {
    const pair = await jose.generateKeyPair("ES256", { extractable: true });
    privateJwk = await jose.exportJWK(pair.privateKey);
  } else {
    let key;
    try {
      key = createPrivateKey(pem);
    } catch (error) {
      throw new Error(`not a PEM private key (${(error as Error).message})`);
    }
    privateJwk = key.export({ format: "jwk" }) as jose.JWK;
    if (privateJwk.kty !== "EC" || privateJwk.crv !== "P-256") {
      throw new Error("the token key must be an EC P-256 key (openssl ecparam -name prime256v1)");
    }
  }
  const { d: _private, ...publicJwk } = privateJwk;
  const kid = await jose.calculateJwkThumbprint(publicJwk);
  const privateKey = await jose.importJWK(privateJwk, "ES256") as CryptoKey;
  const publicKey = await jose.importJWK(publicJwk, "ES256") as CryptoKey;
  return { privateKey, publicKey, publicJwk: { ...publicJwk, kid, alg: "ES256", use: "sig" }, kid };
}

export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: Date;
}

export interface TokenIssuer {
  issue(subject: string, access: ResourceActions[], ttlSeconds?: number): Promise<IssuedToken>;
  /** A long-lived token that only the token endpoint accepts, to get new access tokens. */
  issueRefresh(subject: string): Promise<string>;
  /** The subject of a refresh token; throws when it is not valid. */
  verifyRefresh(token: string): Promise<string>;
}

export interface IssuerOptions {
  key: SigningKey;
  issuer: string;
  service: string;
  /** Access token lifetime (default 300 s; never under 60 s, as clients assume). */
  ttlSeconds?: number;
  refreshTtlSeconds?: number;
  now?: () => number;
}

export function createIssuer(options: IssuerOptions): TokenIssuer {
  const now = options.now ?? Date.now;
  const refreshAudience = `${options.service}#refresh`;
  const seconds = () => Math.floor(now() / 1000);
  const sign = (
    claims: jose.JWTPayload,
    subject: string,
    audience: string,
    ttl: number,
    issuedAt = seconds(),
  ) =>
    new jose.SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: options.key.kid })
      .setIssuer(options.issuer)
      .setSubject(subject)
      .setAudience(audience)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(issuedAt + ttl)
      .setJti(crypto.randomUUID())
      .sign(options.key.privateKey);
  return {
    async issue(subject, access, ttlSeconds = options.ttlSeconds ?? 300) {
      const iat = seconds(); // one clock reading for the token and its issued_at
      const token = await sign({ access }, subject, options.service, ttlSeconds, iat);
      return { token, expiresIn: ttlSeconds, issuedAt: new Date(iat * 1000) };
    },
    issueRefresh(subject) {
      return sign({}, subject, refreshAudience, options.refreshTtlSeconds ?? 7 * 24 * 3600);
    },
    async verifyRefresh(token) {
      const { payload } = await jose.jwtVerify(token, options.key.publicKey, {
        issuer: options.issuer,
        audience: refreshAudience,
        algorithms: ["ES256"],
        currentDate: new Date(now()),
      });
      if (!payload.sub) throw new Error("refresh token without subject");
      return payload.sub;
    },
  };
}

/** What a verified access token says: who (undefined when anonymous) and what it grants. */
export interface VerifiedToken {
  subject: string | undefined;
  access: ResourceActions[];
}

export interface TokenVerifier {
  /** Throws when the token is malformed, badly signed, expired, or for another issuer/service. */
  verify(token: string): Promise<VerifiedToken>;
}

type KeySource = jose.JWTVerifyGetKey | CryptoKey;

export interface VerifierOptions {
  issuer: string;
  service: string;
  key: KeySource;
  algorithms?: string[];
  now?: () => number;
}

export function createVerifier(options: VerifierOptions): TokenVerifier {
  const now = options.now ?? Date.now;
  return {
    async verify(token) {
      const verifyOptions: jose.JWTVerifyOptions = {
        issuer: options.issuer,
        audience: options.service,
        algorithms: options.algorithms,
        currentDate: new Date(now()),
        clockTolerance: 5,
      };
      const { payload } = typeof options.key === "function"
        ? await jose.jwtVerify(token, options.key, verifyOptions)
        : await jose.jwtVerify(token, options.key, verifyOptions);
      if (payload.exp === undefined) throw new Error("token without exp");
      const access = readAccessClaim(payload.access);
      if (!access) throw new Error("malformed access claim");
      return { subject: payload.sub || undefined, access };
    },
  };
}

/** The built-in server's own key checks its tokens. */
export function builtInVerifier(
  key: SigningKey,
  issuer: string,
  service: string,
  now?: () => number,
): TokenVerifier {
  return createVerifier({
    issuer,
    service,
    key: key.publicKey,
    algorithms: ["ES256"],
    now,
  });
}

/** Keys of an external token server: a JWKS document (file text) or a JWKS URL. */
export function jwksKeys(source: { json: string } | { url: string }): jose.JWTVerifyGetKey {
  if ("url" in source) return jose.createRemoteJWKSet(new URL(source.url));
  let jwks;
  try {
    jwks = JSON.parse(source.json);
  } catch (error) {
    throw new Error(`not a JWKS document: ${(error as Error).message}`);
  }
  if (!Array.isArray(jwks?.keys)) throw new Error(`not a JWKS document: no "keys" list`);
  return jose.createLocalJWKSet(jwks);
}

/** The public key of an external token server's certificate (PEM), for any of its algorithms. */
export function certificateKeys(pem: string): { key: jose.JWTVerifyGetKey; algorithms: string[] } {
  let jwk: jose.JWK;
  try {
    jwk = new X509Certificate(pem).publicKey.export({ format: "jwk" }) as jose.JWK;
  } catch (error) {
    throw new Error(`not a PEM certificate (${(error as Error).message})`);
  }
  const algorithms = jwk.kty === "RSA"
    ? ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
    : jwk.kty === "OKP"
    ? ["EdDSA", "Ed25519"]
    : jwk.crv === "P-384"
    ? ["ES384"]
    : jwk.crv === "P-521"
    ? ["ES512"]
    : ["ES256"];
  const imported = new Map<string, Promise<CryptoKey>>();
  const key: jose.JWTVerifyGetKey = (header) => {
    const alg = header.alg ?? "";
    if (!algorithms.includes(alg)) throw new Error(`algorithm ${alg} does not fit the certificate`);
    if (!imported.has(alg)) imported.set(alg, jose.importJWK(jwk, alg) as Promise<CryptoKey>);
    return imported.get(alg)!;
  };
  return { key, algorithms };
}
