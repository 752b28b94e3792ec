"""Execution: the runner, the handler's RunContext, retries, confirmation, redaction."""
