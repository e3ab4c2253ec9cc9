"""The example application: a school's job code on lanework (jobs.py) and
the code that enqueues it (app.py)."""
