"""The function library (docs/DESIGN.md section 10): every caller runs the
scripts by FCALL of one library loaded once per server, and by EVALSHA
where the server will not take it; either way the same jobs run.

  worker and CLI FCALL      on a plain Redis they load the library and no
                            script goes by EVALSHA
  library lost mid-run      FUNCTION FLUSH under a running worker: its calls
                            find no function, the link is rebuilt, the
                            handshake loads the library again, every job
                            finishes once; the CLI loads it again too
  no FUNCTION LOAD          a user that may not load it (ACL): worker and
                            CLI run every script by EVALSHA, say so once,
                            and lose nothing
  an older library beside   another version's library on the same server
                            (an upgrade in progress) is left alone
"""
import signal

import lwtest
from lwtest import check, wait_until


def stop(w):
    w.signal(signal.SIGTERM)
    check(w.wait(40) == 0, 'worker %s exited %s:\n%s' % (w.name, w.proc.returncode, w.log()[-2000:]))


def run_jobs(env, n, tag):
    ids = env.enqueue_batch([{'kind': 'noop', 'payload': {'tag': tag, 'i': i}} for i in range(n)], tenant='t1')
    env.wait_all('t1', ids, timeout=60)
    return ids


def attempts(env, ids):
    c = env.redis.client()
    try:
        return c.pipeline([['HGET', 'lw:{t1}:job:' + i, 'attempt'] for i in ids])
    finally:
        c.close()


def test_worker_and_cli_run_the_library(env):
    env.write_registry([env.tenant('t1')])
    env.redis.call('CONFIG', 'RESETSTAT')
    w = env.worker('--concurrency', '8')
    run_jobs(env, 200, 'a')
    # cancel.lua and retry.lua from the CLI, enqueue.lua one by one
    jid = env.enqueue('t1', 'noop', {}, delay=600)
    rc, out, err = env.cli('cancel', '--tenant', 't1', jid)
    check(rc == 0, 'cancel: %d %s' % (rc, err))
    rc, out, err = env.cli('retry', '--tenant', 't1', jid)
    check(rc == 0, 'retry: %d %s' % (rc, err))
    env.wait_all('t1', [jid])
    stats = env.redis.commandstats()
    check(stats.get('fcall', 0) > 0, 'no FCALL ran: %r' % stats)
    check(stats.get('evalsha', 0) == 0 and stats.get('eval', 0) == 0,
          'scripts ran by EVALSHA/EVAL beside the library: %r' % stats)
    libs = [l for l in env.redis.libraries() if l.startswith('lanework_')]
    check(len(libs) == 1, 'lanework libraries on the server: %r' % libs)
    check('no lanework function library' not in w.log(), 'the worker said it has no library:\n' + w.log())
    stop(w)
    rc, out, err = env.cli('fsck', '--tenant', 't1')
    check(rc == 0, 'fsck after the run: %d %s %s' % (rc, out, err))


def test_library_flushed_under_a_running_worker(env):
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '8', '--poll', '0.2')
    run_jobs(env, 100, 'before')
    # The library goes while jobs flow: the next claims find no function.
    ids = env.enqueue_batch([{'kind': 'noop', 'payload': {'i': i}} for i in range(300)], tenant='t1')
    env.redis.call('FUNCTION', 'FLUSH')
    env.wait_all('t1', ids, timeout=60)
    wait_until(lambda: any(l.startswith('lanework_') for l in env.redis.libraries()), timeout=10,
               what='the worker loaded the library again')
    env.redis.call('FUNCTION', 'FLUSH')
    # The CLI finds no function too: it loads the library and goes on.
    jid = env.enqueue('t1', 'noop', {'after': 'flush'})
    env.wait_all('t1', [jid])
    env.redis.call('FUNCTION', 'FLUSH')
    ids = run_jobs(env, 50, 'batch after flush')
    stop(w)
    ran = attempts(env, ids)
    check(all(a == '1' for a in ran), 'attempts of the jobs: %r' % sorted(set(ran)))
    rc, out, err = env.cli('fsck', '--tenant', 't1')
    check(rc == 0, 'fsck: %d %s %s' % (rc, out, err))


def test_a_user_without_function_load_runs_evalsha(env):
    # A user with every command but FUNCTION and FCALL: what an ACL without
    # them (or a Redis before 7) leaves.
    env.redis.call('ACL', 'SETUSER', 'nofn', 'on', '>nofnpw', '~*', '&*', '+@all', '-function', '-fcall')
    env.redis.url = env.redis.url.replace('unix://', 'unix://nofn:nofnpw@')  # the worker's and the CLI's
    env.redis.call('CONFIG', 'RESETSTAT')
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '8')
    ids = run_jobs(env, 200, 'nofn')  # enqueue --batch: pipelined EVALSHA
    jid = env.enqueue('t1', 'noop', {})  # one EVALSHA
    env.wait_all('t1', ids + [jid])
    stats = env.redis.commandstats()
    check(stats.get('evalsha', 0) > 0, 'no EVALSHA ran: %r' % stats)
    check(stats.get('fcall', 0) == 0, 'an FCALL ran for a user without it: %r' % stats)
    check(not any(l.startswith('lanework_') for l in env.redis.libraries()), 'a library was loaded: %r' % env.redis.libraries())
    said = [l for l in w.log().splitlines() if 'no lanework function library' in l]
    check(len(said) == 1 and 'EVALSHA' in said[0], 'the worker should say once that scripts run by EVALSHA:\n'
          + w.log()[-3000:])
    stop(w)
    rc, out, err = env.cli('fsck', '--tenant', 't1')
    check(rc == 0, 'fsck: %d %s %s' % (rc, out, err))


def test_an_older_library_is_left_alone(env):
    # Another version of lanework loaded its library (different hash, so
    # different names): ours loads beside it, and theirs still answers.
    text = ("#!lua name=lanework_0000000000000000\n"
            "redis.register_function{function_name = 'lw_0000000000000000_loaded', "
            "callback = function() return 7 end, flags = {'no-writes'}}\n")
    env.redis.call('FUNCTION', 'LOAD', text)
    env.write_registry([env.tenant('t1')])
    w = env.worker('--concurrency', '4')
    run_jobs(env, 50, 'beside')
    libs = sorted(l for l in env.redis.libraries() if l.startswith('lanework_'))
    check(len(libs) == 2 and 'lanework_0000000000000000' in libs, 'libraries: %r' % libs)
    check(env.redis.call('FCALL', 'lw_0000000000000000_loaded', '0') == 7, 'the older library was replaced')
    stop(w)


def test_a_function_of_our_name_in_another_library(env):
    # Another library holds our probe's name (only a user allowed FUNCTION
    # LOAD can do that): our load fails, the probe answers something else,
    # and the worker runs every script by EVALSHA instead of rebuilding its
    # link at every call (found by the review of the library).
    env.write_registry([env.tenant('t1')])
    jid = env.enqueue('t1', 'noop', {})  # the CLI loads the library
    libs = [l for l in env.redis.libraries() if l.startswith('lanework_')]
    h = libs[0][len('lanework_'):]
    env.redis.call('FUNCTION', 'DELETE', libs[0])
    env.redis.call('FUNCTION', 'LOAD', "#!lua name=squat\nredis.register_function{function_name='lw_%s_loaded', "
                   "callback=function() return 1 end, flags={'no-writes'}}\n" % h)
    w = env.worker('--concurrency', '2', '--poll', '0.2')
    env.wait_all('t1', [jid], timeout=20)
    jid = env.enqueue('t1', 'noop', {})  # and the CLI
    env.wait_all('t1', [jid], timeout=20)
    stop(w)
    check('Function not found' not in w.log(), 'the worker looked for functions that are not there:\n' + w.log())
    check('another library' in w.log(), 'the worker did not say why it runs EVALSHA:\n' + w.log())


def test_functions_that_keep_going_missing(env):
    # A probe that passes while the functions are not there (another
    # library answers for ours): every FCALL finds no function and rebuilds
    # the link; after a few in a row the worker turns to EVALSHA for good.
    env.write_registry([env.tenant('t1')])
    jid = env.enqueue('t1', 'noop', {})
    lib = [l for l in env.redis.libraries() if l.startswith('lanework_')][0]
    env.redis.call('FUNCTION', 'DELETE', lib)
    h = lib[len('lanework_'):]
    env.redis.call('FUNCTION', 'LOAD', "#!lua name=liar\nredis.register_function{function_name='lw_%s_loaded', "
                   "callback=function() return '%s' end, flags={'no-writes'}}\n" % (h, lib))
    w = env.worker('--concurrency', '2', '--poll', '0.2')
    env.wait_all('t1', [jid], timeout=30)
    ids = [env.enqueue('t1', 'noop', {'i': i}) for i in range(5)]  # the CLI: load refused, EVALSHA
    env.wait_all('t1', ids, timeout=30)
    stop(w)
    said = [l for l in w.log().splitlines() if 'lost its functions' in l]
    check(len(said) == 1, 'the worker should say once that it turned to EVALSHA:\n' + w.log()[-3000:])
    check(w.log().count('Function not found') <= 4, 'the link was rebuilt too often:\n' + w.log()[-3000:])


if __name__ == '__main__':
    lwtest.run([test_worker_and_cli_run_the_library, test_library_flushed_under_a_running_worker,
                test_a_user_without_function_load_runs_evalsha, test_an_older_library_is_left_alone,
                test_a_function_of_our_name_in_another_library, test_functions_that_keep_going_missing])
