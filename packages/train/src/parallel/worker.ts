import { parentPort } from 'node:worker_threads';
import type { TrainConfig } from '../config.js';
import { Replica } from '../replica.js';
import { SharedCollective, abortCollective, type SharedCollectiveBuffers } from './collective.js';
import type { WorkerReply, WorkerRequest } from './protocol.js';

/** A data-parallel training worker: one replica with its own wasm (or other) backend. */
let replica: Replica | undefined;
let buffers: SharedCollectiveBuffers | undefined;
let collective: SharedCollective | undefined;
let lossSum = 0;

const port = parentPort;
if (!port) throw new Error('This module runs as a worker thread of the trainer.');

function reply(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

port.on('message', async (msg: WorkerRequest) => {
  try {
    switch (msg.type) {
      case 'init': {
        const logs: string[] = [];
        const cfg: TrainConfig = msg.cfg;
        collective = new SharedCollective(msg.rank, msg.worldSize);
        replica = await Replica.create(cfg, msg.indexPath, collective, (m) => logs.push(m));
        reply({
          type: 'ready',
          backend: replica.backend,
          logs,
          reduceSize: replica.reduceSize(),
          params: replica.model.encoderQ.countTrainable(),
        });
        break;
      }
      case 'attach':
        buffers = msg.buffers;
        collective!.attach(msg.buffers);
        reply({ type: 'done' });
        break;
      case 'fill':
        replica!.fill(msg);
        reply({ type: 'done' });
        break;
      case 'step': {
        const loss = replica!.step(msg);
        lossSum += loss.dataSync()[0];
        loss.dispose();
        reply({ type: 'done' });
        break;
      }
      case 'takeLoss':
        reply({ type: 'loss', sum: lossSum });
        lossSum = 0;
        break;
      case 'embed': {
        const { features, dim } = replica!.embed(msg.indices);
        reply({ type: 'features', features, dim }, [features.buffer as ArrayBuffer]);
        break;
      }
      case 'snapshot':
        reply({ type: 'snapshot', params: replica!.model.encoderQ.snapshot() });
        break;
      case 'exportModel':
        if (collective!.rank === 0) await replica!.exportModel(msg.dir);
        reply({ type: 'done' });
        break;
      case 'exportState':
        reply({ type: 'state', state: replica!.exportState() });
        break;
      case 'importState':
        replica!.importState(msg.state);
        reply({ type: 'done' });
        break;
      case 'close':
        replica?.dispose();
        replica = undefined;
        reply({ type: 'done' });
        break;
    }
  } catch (err) {
    if (buffers) abortCollective(buffers);
    reply({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  }
});
