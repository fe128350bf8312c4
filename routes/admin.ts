// Who may press the buttons. With ADMIN_PASSWORD set, the actions that change or delete
// (clear photos, cancel, retry, requeue, purge, pause) need it, as HTTP Basic credentials
// (any user name). Browsers ask for it themselves on the 401 and send the request again,
// forms included. Reading stays open. Without it, those actions answer only clients on this
// machine (loopback), as a database or broker on its default settings would.
//
// Guessing: only a wrong or missing password counts; 10 in 15 minutes and that client waits
// (429), whatever it sends, so the lockout tells a guesser nothing. The admin's browser is
// not locked out by a stranger on the same address: a success gives it a signed cookie, and a
// client with that cookie is counted on its own (OWASP's "device cookies").
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import cookieParser from "cookie-parser";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { ipKeyGenerator, MemoryStore, type Options } from "express-rate-limit";
import type { AppDeps } from "../lib/appDeps.ts";
import { AppError, RateLimitedError, UnauthorizedError } from "../lib/platform/errors.ts";

/** Wrong passwords a client may send in GUESS_WINDOW_MS before it must wait. */
const GUESSES = 10;
const GUESS_WINDOW_MS = 15 * 60_000;
const DEVICE_COOKIE = "gendog.admin";
const DEVICE_COOKIE_DAYS = 30;

export function adminOnly(config: AppDeps["config"]): RequestHandler[] {
  return config.adminPassword ? passwordNeeded(config.adminPassword, config.secureCookies) : [localClientsOnly];
}

function passwordNeeded(password: string, secureCookies: boolean): RequestHandler[] {
  const expected = digest(password);
  // Changing the password forgets every browser it knew.
  const deviceKey = createHmac("sha256", password).update("gendog admin device cookies v1").digest();
  const guesses = new MemoryStore();
  guesses.init({ windowMs: GUESS_WINDOW_MS } as Options); // it reads only windowMs

  const check = async (req: Request, res: Response, next: NextFunction) => {
    const device = knownDevice(deviceKey, req.cookies?.[DEVICE_COOKIE]);
    const counter = device ? `device:${device}` : `address:${ipKeyGenerator(req.ip ?? "unknown")}`;
    const counted = await guesses.get(counter);
    if (counted && counted.totalHits >= GUESSES) {
      const seconds = Math.max(
        1,
        Math.ceil(((counted.resetTime?.getTime() ?? Date.now() + GUESS_WINDOW_MS) - Date.now()) / 1000),
      );
      const minutes = Math.ceil(seconds / 60);
      return next(
        new RateLimitedError(
          `Too many wrong admin passwords from you. Try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`,
          seconds,
        ),
      );
    }
    const given = basicCredentials(req.headers.authorization)?.password;
    // Digests of equal length, so the comparison takes the same time whatever was sent.
    if (given === undefined || !timingSafeEqual(digest(given), expected)) {
      await guesses.increment(counter);
      return next(new UnauthorizedError());
    }
    if (!device) {
      const id = randomBytes(16).toString("base64url");
      res.cookie(DEVICE_COOKIE, `${id}.${deviceMac(deviceKey, id)}`, {
        httpOnly: true,
        sameSite: "strict",
        secure: secureCookies,
        path: "/",
        maxAge: DEVICE_COOKIE_DAYS * 86_400_000,
      });
    }
    next();
  };
  return [cookieParser(), (req, res, next) => void check(req, res, next).catch(next)];
}

/** The id in a device cookie this web signed, or undefined. */
function knownDevice(key: Buffer, cookie: unknown): string | undefined {
  const match = typeof cookie === "string" ? /^([\w-]{22})\.([\w-]{43})$/.exec(cookie) : null;
  if (!match) return undefined;
  const given = Buffer.from(match[2]!, "base64url");
  const expected = Buffer.from(deviceMac(key, match[1]!), "base64url");
  return given.length === expected.length && timingSafeEqual(given, expected) ? match[1] : undefined;
}

function deviceMac(key: Buffer, id: string): string {
  return createHmac("sha256", key).update(id).digest("base64url");
}

/**
 * With no password: only a client on this machine. A request forwarded by a proxy is that
 * only if the proxy is trusted (TRUST_PROXY) and says so in X-Forwarded-For, the one header
 * Express reads the client from; through any other proxy, or one that names the client in
 * X-Real-IP or Forwarded, the real client is unknown, and a local proxy must not make
 * everyone local.
 */
function localClientsOnly(req: Request, _res: Response, next: NextFunction) {
  const peer = req.socket.remoteAddress;
  const unread = req.headers.forwarded !== undefined || req.headers["x-real-ip"] !== undefined;
  const forwarded = unread || req.headers["x-forwarded-for"] !== undefined;
  const trusted = req.app.get("trust proxy fn") as (address: string, hop: number) => boolean;
  const local = forwarded ? !unread && peer !== undefined && trusted(peer, 0) && isLoopback(req.ip) : isLoopback(peer);
  if (local) return next();
  next(new AppError(403, "forbidden", "This action is open only to this machine until the admin sets ADMIN_PASSWORD."));
}

function isLoopback(address: string | undefined): boolean {
  const plain = address?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "") ?? "";
  return plain === "::1" || (isIP(plain) === 4 && plain.startsWith("127."));
}

/**
 * Who pressed a button, as recorded on what it changed (a task retried by hand): the user
 * name given with the admin password, if any, and the client's address.
 */
export function actorOf(req: Request): string {
  const user = basicCredentials(req.headers.authorization)
    ?.user.replace(/[^\p{L}\p{N} ._@-]/gu, "")
    .slice(0, 64);
  return `${user || "someone"} from ${req.ip ?? "an unknown address"}`;
}

function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic ([A-Za-z0-9+/=]{1,1024})$/.exec(header ?? "");
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
