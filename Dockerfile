# The image of `sop worker` (compose.yaml): sop-engine with the PostgreSQL and workers extras.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine engine
COPY handlers handlers
COPY sops sops
COPY schemas schemas
RUN pip install --no-cache-dir '.[postgres,workers]' && useradd --create-home sop
USER sop
CMD ["sop", "worker"]
