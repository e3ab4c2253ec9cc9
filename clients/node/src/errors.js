// The errors of lanework: one per exit status of the `lanework` CLI, in
// `.code`, so code that shells out and code that imports the client handle
// failures the same way.

/** Every error the client throws; `.code` is the CLI's exit status. */
export class LaneworkError extends Error {
  constructor(message, code = 1) {
    super(message);
    this.name = this.constructor.name;
    this.code = code;
  }
}

/** The job ended failed, cancelled or expired, or its record is corrupt
 * (1). `.job` is its status object (null when it could not be read). */
export class JobFailed extends LaneworkError {
  constructor(message, job = null) {
    super(message, 1);
    this.job = job;
  }
}

/** Bad input, refused before anything is written (2). */
export class InvalidInput extends LaneworkError {
  constructor(message) { super(message, 2); }
}

/** Redis unreachable or refusing the command (3). `.outage`: the
 * connection was lost (rather than a refusal such as OOM or NOPERM). */
export class RedisUnavailable extends LaneworkError {
  constructor(message, outage = false) {
    super(message, 3);
    this.outage = outage;
  }
}

/** This client and the Redis speak different lanework protocols (3). */
export class ProtocolMismatch extends LaneworkError {
  constructor(message) { super(message, 3); }
}

/** No job has that id (4). */
export class NoSuchJob extends LaneworkError {
  constructor(message) { super(message, 4); }
}

/** wait() gave up before the job ended (124). */
export class WaitTimeout extends LaneworkError {
  constructor(message) { super(message, 124); }
}
