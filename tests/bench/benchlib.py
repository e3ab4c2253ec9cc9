"""benchlib.py — what the Python benchmarks of tests/bench share: a
process's CPU time, Redis's command counters, a free port. (Not lwtest:
a benchmark sets the binaries' paths in the environment before it imports
that.)"""
import os
import socket

HZ = os.sysconf('SC_CLK_TCK')


def free_port():
    """A TCP port of 127.0.0.1 free a moment ago."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_cpu_s(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat)."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def commandstats(r):
    """{command: (calls, usec)} from INFO commandstats of client r (r.call)."""
    out = {}
    for line in r.call('INFO', 'commandstats').splitlines():
        if line.startswith('cmdstat_'):
            name, rest = line[len('cmdstat_'):].split(':', 1)
            kv = dict(x.split('=', 1) for x in rest.split(','))
            out[name] = (int(kv['calls']), float(kv['usec']))
    return out
