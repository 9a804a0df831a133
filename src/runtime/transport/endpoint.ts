/*
 * endpoint.ts — comlink endpoints for the control plane.
 *
 * comlink expects a DOM-style endpoint (postMessage / addEventListener('message')); Node's
 * MessagePort speaks `on('message', value)`, and a process host's control channel is CONTROL
 * frames on its TCP link. These adapters bridge both, so the same comlink calls (spawn, stop)
 * drive a worker thread and a child process.
 */
import type { Endpoint } from 'comlink';
import type { MessagePort } from 'node:worker_threads';
import { FrameKind } from '../codec.js';
import type { TcpLink } from './tcp.js';

type Listener = (event: { data: unknown }) => void;

interface MinimalEndpoint {
  postMessage(message: unknown, transfer?: unknown[]): void;
  addEventListener(type: string, listener: Listener): void;
  removeEventListener(type: string, listener: Listener): void;
}

export function portEndpoint(port: MessagePort): Endpoint {
  const wrapped = new Map<Listener, (value: unknown) => void>();
  const endpoint: MinimalEndpoint = {
    postMessage: (message, transfer) => port.postMessage(message, transfer as never),
    addEventListener: (_type, listener) => {
      const onMessage = (data: unknown) => listener({ data });
      wrapped.set(listener, onMessage);
      port.on('message', onMessage);
    },
    removeEventListener: (_type, listener) => {
      const onMessage = wrapped.get(listener);
      if (onMessage !== undefined) port.off('message', onMessage);
      wrapped.delete(listener);
    },
  };
  return endpoint as unknown as Endpoint;
}

export function linkEndpoint(link: TcpLink): Endpoint {
  const listeners = new Set<Listener>();
  link.setControlListener((payload) => {
    for (const listener of listeners) listener({ data: payload });
  });
  const endpoint: MinimalEndpoint = {
    postMessage: (message) => link.send([FrameKind.Control, message]),
    addEventListener: (_type, listener) => listeners.add(listener),
    removeEventListener: (_type, listener) => listeners.delete(listener),
  };
  return endpoint as unknown as Endpoint;
}
