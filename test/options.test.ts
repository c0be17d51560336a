/**
 * #11: one resolve step per class: defaults filled from the DEFAULT_*
 * constants, bad values refused with an OptionError (code INVALID_ARGUMENT)
 * that names the library option.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../src/errors.js';
import { OptionError, intOption } from '../src/options.js';
import { DEFAULT_CONNECT_TIMEOUT as PUBLISHER_CONNECT_TIMEOUT, DEFAULT_STALL_TIMEOUT, resolvePublisherOptions } from '../src/publisher.js';
import { DEFAULT_CONNECT_TIMEOUT, resolveClientOptions } from '../src/spread/client.js';
import { DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_LINES, resolveQueueOptions } from '../src/queue.js';
import { DEFAULT_MAX_LINE, resolveSplitterOptions } from '../src/reader.js';
import { DEFAULT_SPOOL_MAX, resolveSpoolOptions } from '../src/spool.js';
import { DEFAULT_SESSION_BUFFER, MIN_SESSION_BUFFER, resolveDaemonOptions } from '../src/spread/daemon.js';
import { DEFAULT_MAX_OPEN_FILES, resolveWriterOptions } from '../src/writer.js';
import { DEFAULT_RECV_BUFFER, DEFAULT_SOCKET_MODE, resolveListenerOptions } from '../src/syslog/listener.js';
import { parseDaemonAddress } from '../src/spread/address.js';

const refused = (fn: () => unknown, option: string, detail: RegExp): void => {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(OptionError);
  expect(err).toMatchObject({ option });
  expect((err as OptionError).code).toMatch(/^SP_ERR_(INVALID_ARGUMENT|ILLEGAL_NAME|ILLEGAL_SPREAD)$/);
  expect((err as OptionError).detail).toMatch(detail);
};

describe('#11: resolve...Options', () => {
  it('#11: intOption says what it expected, never NaN', () => {
    expect(intOption('x', undefined, 7)).toBe(7);
    refused(() => intOption('x', Number('abc'), 7, { unit: 'milliseconds' }), 'x', /^expected a whole number of milliseconds, got null$/);
    refused(() => intOption('x', 0, 7, { min: 1, unit: 'milliseconds' }), 'x', /^must be at least 1 millisecond, got 0$/);
    refused(() => intOption('x', 9, 7, { max: 8, unit: 'bytes' }), 'x', /^must be at most 8 bytes, got 9$/);
  });

  it('#11: one DEFAULT_CONNECT_TIMEOUT for the publisher and the client', () => {
    expect(PUBLISHER_CONNECT_TIMEOUT).toBe(DEFAULT_CONNECT_TIMEOUT);
    const daemons = [parseDaemonAddress('4803@127.0.0.1')];
    expect(resolvePublisherOptions({ daemons }).connectTimeout).toBe(DEFAULT_CONNECT_TIMEOUT);
    expect(resolveClientOptions({ daemon: '4803' }).connectTimeout).toBe(DEFAULT_CONNECT_TIMEOUT);
  });

  it('#11: Publisher: defaults, and each bad value names its option', () => {
    const daemons = [parseDaemonAddress('4803@127.0.0.1')];
    expect(resolvePublisherOptions({ daemons })).toMatchObject({ stallTimeout: DEFAULT_STALL_TIMEOUT, queueLines: DEFAULT_QUEUE_LINES, queueBytes: DEFAULT_QUEUE_BYTES, onFull: 'drop-newest', batch: false });
    refused(() => resolvePublisherOptions({ daemons: [] }), 'daemons', /at least one/);
    refused(() => resolvePublisherOptions({ daemons, connectTimeout: 0 }), 'connectTimeout', /at least 1/);
    refused(() => resolvePublisherOptions({ daemons, stallTimeout: 1.5 }), 'stallTimeout', /whole number/);
    refused(() => resolvePublisherOptions({ daemons, queueLines: 0 }), 'queueLines', /at least 1/);
    refused(() => resolvePublisherOptions({ daemons, onFull: 'drop-random' as never }), 'onFull', /expected one of drop-newest/);
    refused(() => resolvePublisherOptions({ daemons, name: 'far too long a name' }), 'name', /bad private name/);
    refused(() => resolvePublisherOptions({ daemons, batchBytes: 10 ** 6 }), 'batchBytes', /at most 143151/);
  });

  it('#11: LineQueue, LineSplitter, Spool, LogWriter', () => {
    expect(resolveQueueOptions()).toEqual({ maxLines: DEFAULT_QUEUE_LINES, maxBytes: DEFAULT_QUEUE_BYTES, policy: 'drop-newest' });
    refused(() => resolveQueueOptions({ maxBytes: -1 }), 'maxBytes', /at least 1/);
    expect(resolveSplitterOptions().maxLine).toBe(DEFAULT_MAX_LINE);
    refused(() => resolveSplitterOptions({ maxLine: 0 }), 'maxLine', /at least 1/);
    expect(resolveSpoolOptions().maxBytes).toBe(DEFAULT_SPOOL_MAX);
    refused(() => resolveSpoolOptions({ maxBytes: 1024 }), 'maxBytes', /at least 262144/);
    refused(() => resolveSpoolOptions({ cursorEvery: 0 }), 'cursorEvery', /at least 1/);
    expect(resolveWriterOptions().maxOpenFiles).toBe(DEFAULT_MAX_OPEN_FILES);
    refused(() => resolveWriterOptions({ maxOpenFiles: 0 }), 'maxOpenFiles', /at least 1 file/);
  });

  it('#11: SpreadDaemon, SyslogListener, SpreadClient', () => {
    const d = resolveDaemonOptions({ name: 'central' });
    expect(d).toMatchObject({ name: 'central', sessionBuffer: DEFAULT_SESSION_BUFFER, allow: [] });
    expect(d.listen).toEqual([{ port: 4803 }, { path: '/tmp/4803' }]);
    refused(() => resolveDaemonOptions({ name: 'a#b' }), 'name', /without spaces/);
    refused(() => resolveDaemonOptions({ sessionBuffer: MIN_SESSION_BUFFER - 1 }), 'sessionBuffer', /at least 262144/);
    refused(() => resolveDaemonOptions({ listen: [] }), 'listen', /at least one/);
    expect(resolveListenerOptions()).toMatchObject({ socketMode: DEFAULT_SOCKET_MODE, recvBuffer: DEFAULT_RECV_BUFFER });
    refused(() => resolveListenerOptions({ socketMode: 0o777 }), 'socketMode', /execute bits/);
    refused(() => resolveListenerOptions({ recvBuffer: 2 ** 31 }), 'recvBuffer', /at most/);
    expect(resolveClientOptions({ daemon: '4803@h' }).daemon).toMatchObject({ kind: 'tcp', host: 'h', port: 4803 });
    refused(() => resolveClientOptions({ daemon: 'nowhere' }), 'daemon', /bad daemon name/);
    expect(() => resolveClientOptions({ daemon: '4803', name: 'bad#name' })).toThrow(expect.objectContaining({ code: ErrorCodes.ILLEGAL_NAME, option: 'name' }));
    expect(() => resolveQueueOptions({ maxLines: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    refused(() => resolveClientOptions({ daemon: '4803', connectTimeout: -5 }), 'connectTimeout', /at least 1/);
  });
});
