"""A persistent handler speaking the protocol by hand, to break it on
purpose (tests/integration/test_persistent.py): the payload's "mode"."""
import json
import os
import sys

for line in sys.stdin:
    job = json.loads(line)
    mode = job["payload"].get("mode")
    out = sys.stdout
    if mode == "garbage":
        out.write("hello, this is not json\n")
    elif mode == "unknown":
        out.write('{"type":"progress","pct":5}\n')
    elif mode == "twice":
        out.write('{"type":"result","result":1}\n{"type":"result","result":2}\n')
    elif mode == "oversize":
        out.write('{"type":"event","event":"x","data":"' + "a" * int(job["payload"]["bytes"]) + '"}\n')
        out.write(json.dumps({"type": "result", "result": {"pid": os.getpid()}}) + "\n")
    elif mode == "close":
        os.close(1)
    else:
        out.write(json.dumps({"type": "result", "result": {"pid": os.getpid()}}) + "\n")
    out.flush()
