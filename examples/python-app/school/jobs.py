"""The school's job code, served as one persistent lanework handler.

The worker starts `python3 -m school.jobs` once and sends it attempts one at
a time (CONTRACT section 11), so the imports and the set-up below are paid
once per process, not once per job. Each function gets the job and returns
its result; `Fail` ends the job without a retry, any other exception is
retried while attempts remain.

Kinds: upload (the files of a spooled job's directory), exam, profile_update,
chat (its lane is the chat session) and run (the run worker's event chain
run.started -> step.created -> tool.invoked -> tool.succeeded ->
run.completed, or run.failed).
"""
import hashlib
import os
import re

from lanework import Fail, handler

PASS_MARK = 60
PROFILE_FIELDS = ("display_name", "email", "bio", "locale", "timezone")
USER_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def payload_of(job, kind=dict):
    p = job.payload
    if not isinstance(p, kind):
        raise Fail("payload must be a JSON %s" % ("object" if kind is dict else kind.__name__))
    return p


@handler.kind("upload")
def upload(job):
    """A spooled upload: every file of the job's directory (but job.json),
    or those payload.files names, with its size, line count and SHA-256."""
    if not job.spool_dir:
        raise Fail("upload jobs come from the upload spool (no spool_dir)")
    wanted = (job.payload or {}).get("files") if isinstance(job.payload, dict) else None
    names = sorted(n for n in os.listdir(job.spool_dir) if n != "job.json" and not n.startswith("."))
    if wanted is not None:
        if not isinstance(wanted, list) or not all(isinstance(n, str) for n in wanted):
            raise Fail("payload.files must be a list of file names")
        missing = [n for n in wanted if n not in names]
        if missing:
            raise Fail("files missing from the upload: %s" % ", ".join(missing))
        names = wanted
    files = []
    for n in names:
        with open(os.path.join(job.spool_dir, n), "rb") as f:
            data = f.read()
        files.append({"name": n, "bytes": len(data), "lines": data.count(b"\n"),
                      "sha256": hashlib.sha256(data).hexdigest()})
    job.event("upload.checked", {"files": len(files)})
    return {"files": files}


@handler.kind("exam")
def exam(job):
    """Grades payload.answers against payload.key: score in percent, passed."""
    p = payload_of(job)
    student, answers, key = p.get("student"), p.get("answers"), p.get("key")
    if not isinstance(student, str) or not student:
        raise Fail("payload.student must be a non-empty string")
    if not isinstance(key, list) or not key:
        raise Fail("payload.key must be a non-empty list")
    if not isinstance(answers, list) or len(answers) > len(key):
        raise Fail("payload.answers must be a list of at most %d answers" % len(key))
    right = sum(1 for a, k in zip(answers, key) if a == k)
    score = round(100 * right / len(key))
    return {"student": student, "right": right, "of": len(key), "score": score, "passed": score >= PASS_MARK}


@handler.kind("profile_update")
def profile_update(job):
    """Checks and applies payload.fields to payload.user's profile."""
    p = payload_of(job)
    user, fields = p.get("user"), p.get("fields")
    if not isinstance(user, str) or not USER_RE.match(user):
        raise Fail("payload.user must be a user name")
    if not isinstance(fields, dict) or not fields:
        raise Fail("payload.fields must be a non-empty object")
    unknown = sorted(set(fields) - set(PROFILE_FIELDS))
    if unknown:
        raise Fail("unknown profile field(s): %s" % ", ".join(unknown))
    email = fields.get("email")
    if email is not None and (not isinstance(email, str) or "@" not in email.strip("@")):
        raise Fail("email %r has no domain" % email)
    return {"user": user, "updated": sorted(fields)}


def echo_tool(text):
    return text[::-1] if text.startswith("!") else text


@handler.kind("chat")
def chat(job):
    """One message of a chat session (the job's lane): its steps as events,
    in order, then the reply."""
    p = payload_of(job)
    message = p.get("message")
    if not isinstance(message, str):
        raise Fail("payload.message must be a string")
    session = job.lane
    job.event("step.created", {"session": session, "step": 1, "message": message})
    job.event("tool.invoked", {"session": session, "step": 1, "tool": "echo", "input": message})
    output = echo_tool(message)
    job.event("tool.succeeded", {"session": session, "step": 1, "tool": "echo", "output": output})
    return {"session": session, "reply": "you said: %s" % output}


@handler.kind("run")
def run(job):
    """The run worker: payload.steps, each a tool call, as the event chain
    run.started -> (step.created -> tool.invoked -> tool.succeeded)... ->
    run.completed; a step whose tool is "fail" ends it with run.failed."""
    p = payload_of(job)
    steps = p.get("steps")
    if not isinstance(steps, list) or not steps:
        raise Fail("payload.steps must be a non-empty list")
    job.event("run.started", {"run": job.id, "steps": len(steps)})
    outputs = []
    for i, step in enumerate(steps, 1):
        if job.cancelled:
            job.event("run.failed", {"run": job.id, "step": i, "error": "cancelled"})
            raise Fail("cancelled at step %d" % i)
        tool = step.get("tool") if isinstance(step, dict) else None
        job.event("step.created", {"run": job.id, "step": i, "tool": tool})
        job.event("tool.invoked", {"run": job.id, "step": i, "tool": tool, "input": step.get("input")})
        if tool != "echo":
            job.event("run.failed", {"run": job.id, "step": i, "error": "tool %r failed" % tool})
            raise Fail("step %d: tool %r failed" % (i, tool))
        out = echo_tool(str(step.get("input", "")))
        job.event("tool.succeeded", {"run": job.id, "step": i, "tool": tool, "output": out})
        outputs.append(out)
    job.event("run.completed", {"run": job.id, "steps": len(steps)})
    return {"outputs": outputs}


if __name__ == "__main__":
    handler.run()
