# Production image: one image, one component per container (see compose.yaml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY core core
COPY inbound inbound
COPY bots bots
COPY knowledge knowledge
COPY admin_api admin_api
COPY alembic alembic
RUN pip install --no-cache-dir . && useradd --system threadline && mkdir -p /data && chown threadline /data
USER threadline
ENV THREADLINE_DATA_DIR=/data
ENTRYPOINT ["threadline"]
