"""``sop ui``: a local web page for operators (SOPs, runs, timelines, an approvals inbox).

Server-rendered (Starlette, jinja2 templates, no JavaScript). Nothing anonymous: a login
secret printed at start opens a session; every POST carries the session's CSRF token;
approvals are authorised by that login and journaled with the person, who never handles
a confirmation token (engine.execution.decide.approve).
"""
