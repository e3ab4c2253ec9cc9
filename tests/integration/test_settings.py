"""Tenant settings (issue 9 item 2): retention times and the event-stream cap
are the tenant's, not each writer's. Registry "defaults" (keep_succeeded,
keep_failed, events_max), else the workers' flags, are published to Redis by
the workers and applied by every script, whoever calls it: a shell script's
`lanework` without flags no longer trims the stream to the CLI's default or
gives a cancelled job the CLI's retention."""
import json
import signal

from lwtest import check, run, wait_until


def settings(env, tenant='t1'):
    r = env.redis.call('HGETALL', 'lw:{%s}:settings' % tenant) or []
    return {r[i]: r[i + 1] for i in range(0, len(r), 2)}


def test_registry_settings_apply_to_every_writer(env):
    env.write_registry([env.tenant('t1', defaults={'keep_failed': 30, 'keep_succeeded': 20, 'events_max': 10})])
    w = env.worker('--concurrency', '2')
    wait_until(lambda: settings(env).get('keep_failed') == '30', timeout=5, what='the settings to be published')
    check(settings(env) == {'keep_succeeded': '20', 'keep_failed': '30', 'events_max': '10'},
          'published: %s' % settings(env))
    # The CLI, without --keep-failed: the cancelled record gets the tenant's
    # 30 s, not the CLI's 7 days.
    jid = env.enqueue('t1', 'noop', {}, delay=600)
    rc, _out, err = env.cli('cancel', '--tenant', 't1', jid)
    check(rc == 0, 'cancel: %r' % err)
    ttl = env.redis.call('TTL', 'lw:{t1}:job:' + jid)
    check(0 < ttl <= 30, 'a job cancelled from the CLI is kept %d s, not the tenant\'s 30 s' % ttl)
    ok = env.enqueue('t1', 'noop', {})
    env.wait_all('t1', [ok])
    ttl = env.redis.call('TTL', 'lw:{t1}:job:' + ok)
    check(0 < ttl <= 20, 'a succeeded job is kept %d s, not 20 s' % ttl)
    # The CLI's enqueues trim the stream to the tenant's cap (XADD MAXLEN ~
    # trims whole stream nodes of 100 entries, hence the slack).
    ids = env.enqueue_batch([{'kind': 'noop', 'delay': 600} for _ in range(600)], tenant='t1')
    n = env.redis.call('XLEN', 'lw:{t1}:events')
    check(len(ids) == 600 and n <= 250, 'the stream holds %d events with events_max 10' % n)
    w.signal(signal.SIGTERM)
    check(w.wait() == 0, 'worker exit')


def test_worker_flags_are_the_fallback_and_reload_updates(env):
    env.write_registry([env.tenant('t1')])
    w1 = env.worker('--keep-failed', '40', '--events-max', '50', name='w1')
    wait_until(lambda: settings(env).get('keep_failed') == '40', timeout=5, what='w1 to publish its flags')
    jid = env.enqueue('t1', 'noop', {}, delay=600)
    rc, _out, err = env.cli('cancel', '--tenant', 't1', jid)
    ttl = env.redis.call('TTL', 'lw:{t1}:job:' + jid)
    check(rc == 0 and 0 < ttl <= 40, 'cancel from the CLI used its own retention: ttl %d' % ttl)
    # A second worker with other flags takes over, and says so.
    w2 = env.worker('--keep-failed', '45', name='w2')
    wait_until(lambda: settings(env).get('keep_failed') == '45', timeout=5, what='w2 to publish its flags')
    wait_until(lambda: 'keep_failed was 40 (published by another worker), now 45' in w2.log(), timeout=5,
               what='w2 to warn about the disagreement')
    # The registry settles it: a reload publishes the registry's value.
    env.write_registry([env.tenant('t1', defaults={'keep_failed': 60})])
    w1.signal(signal.SIGHUP)
    wait_until(lambda: settings(env).get('keep_failed') == '60', timeout=5, what='the reload to publish')
    check(settings(env).get('events_max') == '50', 'events_max falls back to w1\'s flag: %s' % settings(env))
    for w in (w1, w2):
        w.signal(signal.SIGTERM)
        check(w.wait() == 0, 'worker exit')


def test_bad_settings_in_the_registry(env):
    env.write_registry([env.tenant('t1', defaults={'keep_failed': 0})])
    rc, _out, err = env.cli('status', '--tenant', 't1', 'x')
    check(rc == 2 and 'defaults.keep_failed must be a whole number of seconds from 1' in err,
          'a bad keep_failed: %d %r' % (rc, err))
    with open(env.registry, 'w') as f:
        json.dump([{'tenant': 't1', 'defaults': {'events_max': 'many'}}], f)
    w = env.worker()
    check(w.wait(timeout=10) == 2 and 'defaults.events_max must be a whole number' in w.log(),
          'the worker accepted a bad events_max')


if __name__ == '__main__':
    run([test_registry_settings_apply_to_every_writer, test_worker_flags_are_the_fallback_and_reload_updates,
         test_bad_settings_in_the_registry])
