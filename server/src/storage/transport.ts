import type { Logger } from '../logger.js';

/**
 * What both object-store drivers (cos, s3) take for their HTTP transport and deadlines, and its
 * defaults: one budget per call, a put's deadline that grows with its size, and two keep-alive
 * pools so slow downloads never keep a put or a delete waiting. See docs/architecture.md,
 * "Storage drivers and signing".
 */
export interface TransportOptions {
  /** Budget for one operation (for get: until the response headers; then per idle gap in the body). */
  timeoutMs?: number;
  /** Sockets for object downloads (default 256); every other call has a pool of its own. */
  streamSockets?: number;
  /** A put may take timeoutMs plus its size at this rate (default 256 KiB/s). */
  putMinBytesPerSecond?: number;
  /** Where the background clean-up after a failed put reports (silent without). */
  logger?: Logger;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_PUT_MIN_BYTES_PER_SECOND = 256 * 1024;
/** Sockets for object downloads (stream mode), and for every other call. */
export const STREAM_SOCKETS = 256;
export const CONTROL_SOCKETS = 64;
/** Idle keep-alive sockets are dropped after this (before the server closes them: fewer resets). */
export const IDLE_SOCKET_MS = 30_000;
