"""The school's application side: it hands its work to lanework and reads
the outcome -- what the seed's FastAPI app did with RQ, as plain functions
and a demo `main()` (`python3 -m school.app SPOOL_DIR`).

Uploads are spooled: the files and a job.json go into a directory of the
tenant's upload spool, renamed into place in one step, and a worker enqueues
it (a spooled job survives Redis being away at upload time). Everything
else is enqueued with lanework.Client; chat messages of one session share a
lane, so they are answered one at a time, in order.
"""
import json
import os
import sys
import uuid

import lanework

TENANT = os.environ.get("SCHOOL_TENANT", "school")


def spool_upload(spool_dir, files):
    """Writes {name: bytes} as a pending upload job; returns its id."""
    job_id = "upload-" + uuid.uuid4().hex[:12]
    tmp = os.path.join(spool_dir, "." + job_id)
    os.mkdir(tmp)
    for name, data in files.items():
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
    with open(os.path.join(tmp, "job.json"), "w") as f:
        json.dump({"job_id": job_id, "status": "queued", "payload": {"files": sorted(files)}}, f)
    os.rename(tmp, os.path.join(spool_dir, job_id))
    return job_id


def submit_exam(c, student, answers, key):
    return c.enqueue(TENANT, "exam", {"student": student, "answers": answers, "key": key})


def submit_profile_update(c, user, fields):
    # One lane per user: two updates of one profile never race.
    return c.enqueue(TENANT, "profile_update", {"user": user, "fields": fields}, lane="profile-" + user)


def send_chat(c, session, message):
    return c.enqueue(TENANT, "chat", {"message": message}, lane=session, queue="chat")


def start_run(c, steps):
    return c.enqueue(TENANT, "run", {"steps": steps}, timeout=60)


def outcome(c, job_id, timeout=60):
    """The job's status dict once it ended, succeeded or not."""
    try:
        return c.wait(TENANT, job_id, timeout=timeout)
    except lanework.JobFailed as e:
        return e.job


def main(argv):
    if len(argv) != 2:
        print("usage: python3 -m school.app UPLOAD_SPOOL_DIR", file=sys.stderr)
        return 2
    c = lanework.Client()
    ids = [spool_upload(argv[1], {"grades.csv": b"student,grade\nann,91\nbob,78\n"})]
    ids.append(submit_exam(c, "ann", ["a", "c", "d"], ["a", "b", "d"]))
    ids.append(submit_profile_update(c, "ann", {"email": "ann@example.org", "locale": "pt-BR"}))
    ids.append(submit_profile_update(c, "bob", {"email": "no-domain"}))
    for m in ("hi", "!lanes"):
        ids.append(send_chat(c, "session-ann", m))
    ids.append(start_run(c, [{"tool": "echo", "input": "plan"}, {"tool": "echo", "input": "!act"}]))
    ids.append(start_run(c, [{"tool": "echo", "input": "plan"}, {"tool": "search", "input": "x"}]))
    for job_id in ids:
        j = outcome(c, job_id)
        what = json.dumps(j["result"]) if j["status"] == "succeeded" else "error: %s" % j["error"]
        print("  %-26s %-15s %-9s %s" % (j["id"], j["kind"], j["status"], what))
    print("  events of the chat session and the runs, in order:")
    for ev in c.events(TENANT):
        if ev["lane"] == "session-ann" or ev["kind"] == "run":
            print("    %-15s %s" % (ev["type"], ev["job"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
