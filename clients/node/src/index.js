// lanework: enqueue and steer lanework jobs from Node.
//
//   import { Client } from 'lanework';
//   const c = new Client();                 // LANEWORK_REDIS_URL, LANEWORK_NAMESPACE
//   const id = await c.enqueue('acme', 'thumbnail', { path: 'a.png' }, { lane: 'user-42' });
//   console.log((await c.wait('acme', id, { timeout: 30 })).result);
//   await c.close();
export { Client } from './client.js';
export { InvalidInput, JobFailed, LaneworkError, NoSuchJob, ProtocolMismatch, RedisUnavailable, WaitTimeout } from './errors.js';
export { protocol } from './interface.js';
