/** The part of the unix-dgram addon (no types of its own) that the listener uses. */
declare module 'unix-dgram' {
  import type { EventEmitter } from 'node:events';

  export interface UnixDgramSocket extends EventEmitter {
    /** Synchronous: emits 'listening' or 'error' before returning. */
    bind(path: string): void;
    /** Synchronous: emits 'connect' or 'error' (ECONNREFUSED when nobody is bound) before returning. */
    connect(path: string): void;
    send(buf: Buffer, offset: number, length: number, path: string, callback?: (err?: Error) => void): void;
    send(buf: Buffer, callback?: (err?: Error) => void): void;
    close(): void;
  }

  export function createSocket(type: 'unix_dgram', listener?: (msg: Buffer) => void): UnixDgramSocket;
}
