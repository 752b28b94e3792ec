"""Runs on Celery workers over Redis: ``engine.submit`` / ``sop run --submit`` journal a run
and enqueue its id; ``sop worker`` executes it from the shared (PostgreSQL) journal.

No scheduler of our own: Celery delivers, acknowledges late and re-delivers a task whose
worker died; the journal's lease and idempotency keys make the execution exactly once.
Celery is the optional ``workers`` extra, imported only by the modules that talk to the
broker (``app``, ``queue``, ``health``'s queue depth).
"""
