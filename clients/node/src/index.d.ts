// Types of the lanework Node client (src/index.js), for editors and TypeScript.

export interface ClientOptions {
  /**
   * default LANEWORK_REDIS_URL, else redis://127.0.0.1:6379/0. One of:
   * redis://[[user]:password@]host[:port][/db],
   * unix://[[user]:password@]/path/to.sock[?db=N],
   * rediss://[[user]:password@]host[:port][/db][?ca=FILE&cert=FILE&key=FILE&sni=NAME&insecure=1],
   * redis-sentinel://[[user]:password@]host:port[,host:port...]/MASTER[?db=N&sentinel_user=U&sentinel_password=P],
   * rediss-sentinel://... (the TLS parameters too),
   * redis-cluster://[[user]:password@]host[:port][,host[:port]...],
   * rediss-cluster://... (the TLS parameters too)
   */
  url?: string;
  /** key prefix; default LANEWORK_NAMESPACE, else lw */
  namespace?: string;
  /** payload limit in bytes (0: none); default LANEWORK_MAX_PAYLOAD, else 1 MiB */
  maxPayload?: number;
  /** replicas that must confirm every state change (WAIT N 1000 after it; RedisUnavailable with
   * `unconfirmed` when fewer do); a non-negative integer, default LANEWORK_MIN_REPLICAS, else 0 */
  minReplicas?: number;
}

export interface JobOptions {
  lane?: string;
  queue?: string;
  id?: string;
  unique?: string;
  /** seconds */
  delay?: number;
  attempts?: number;
  /** seconds one attempt may run */
  timeout?: number;
  /** seconds it may wait unclaimed */
  expires?: number;
  /** seconds the unique key stays held after the enqueue */
  uniqueFor?: number;
}

export interface Job extends JobOptions {
  kind: string;
  payload?: unknown;
}

export interface Enqueued {
  id: string;
  /** false: an existing job was returned (its id or unique key was taken) */
  created: boolean;
  /** '' when created, else enqueue.lua's "held STATUS" or "exists STATUS" */
  why: string;
}

export type Status = 'scheduled' | 'queued' | 'active' | 'succeeded' | 'failed' | 'cancelled' | 'expired';

/** What `lanework status` prints. */
export interface JobStatus {
  id: string; tenant: string; kind: string | null; queue: string | null; lane: string | null;
  status: Status | null; payload: unknown; attempt: number | null; attempts: number | null;
  timeout: number | null; enqueued_at: string | null; started_at: string | null; finished_at: string | null;
  result: unknown; error: string | null; worker: string | null; run_at: string | null;
  expires_at: string | null; unique: string | null; spool_dir: string | null;
}

/** What `lanework events` prints: `id` is `ID#P` for an event of partition P >= 1 of a partitioned tenant. */
export interface JobEvent {
  id: string; type: string | null; job: string | null; kind: string | null; lane: string | null;
  attempt: number | null; worker: string | null; ts: string | null; data: unknown;
}

export class Client {
  constructor(options?: ClientOptions);
  readonly namespace: string;
  readonly minReplicas: number;
  enqueue(tenant: string, kind: string, payload?: unknown, options?: JobOptions & { details?: false }): Promise<string>;
  enqueue(tenant: string, kind: string, payload: unknown, options: JobOptions & { details: true }): Promise<Enqueued>;
  enqueueMany(tenant: string, jobs: Job[], options?: { details?: false }): Promise<string[]>;
  enqueueMany(tenant: string, jobs: Job[], options: { details: true }): Promise<Enqueued[]>;
  status(tenant: string, id: string): Promise<JobStatus>;
  wait(tenant: string, id: string, options?: { timeout?: number }): Promise<JobStatus>;
  cancel(tenant: string, id: string): Promise<'cancelled' | 'requested'>;
  retry(tenant: string, id: string): Promise<string>;
  /** since: an event's id (`ID` or `ID#P`), resumed exactly after that event as `lanework events --since`. */
  events(tenant: string, options?: { since?: string; follow?: boolean }): AsyncGenerator<JobEvent, void, undefined>;
  close(): Promise<void>;
}

export class LaneworkError extends Error { code: number; }
export class JobFailed extends LaneworkError { code: 1; job: JobStatus | null; }
export class InvalidInput extends LaneworkError { code: 2; }
export class RedisUnavailable extends LaneworkError {
  code: 3;
  /** the connection was lost (or, under Sentinel, the node turned replica): worth trying again */
  outage: boolean;
  ids?: string[] | Enqueued[];
  /** true: the change is on the master but fewer than minReplicas replicas confirmed it */
  unconfirmed?: boolean;
}
export class ProtocolMismatch extends LaneworkError { code: 3; }
export class NoSuchJob extends LaneworkError { code: 4; }
export class WaitTimeout extends LaneworkError { code: 124; }
export function protocol(): number;
