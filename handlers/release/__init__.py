"""The release pack: the code-checkable lines of the release-runbook SOP.

The pack's descriptor (entry point ``sop_engine.handlers: release``); it imports
nothing, so ``sop`` loads the checks only for a release run. The lines the agent
performs (bump, changelog, commit, tag) are deliberately not bound here:
``handlers.release.performer`` is a scripted performer for them (demo and tests).
"""

sops = ("release-runbook",)
modules = ("handlers.release.checks",)
