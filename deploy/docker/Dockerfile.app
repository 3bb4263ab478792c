# syntax=docker/dockerfile:1
# The Python services of Yuqing: crawlers, report server, notifier, ClickHouse sink and
# `yuqing db migrate`. Build from the repository root:
#   docker build -f deploy/docker/Dockerfile.app -t yuqing/app:0.1.0 .
# The entry point is `yuqing`; the command picks the service (`crawl --config ...`).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/yuqing/venv \
    PATH=/opt/yuqing/venv/bin:$PATH \
    YUQING_STATE_DIR=/var/lib/yuqing \
    TZ=Asia/Shanghai

WORKDIR /opt/yuqing
RUN python -m venv /opt/yuqing/venv

# Dependencies first (their layer survives code changes): the exact pins of pyproject.toml.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY core ./core
COPY yuqing ./yuqing
COPY ingest ./ingest
COPY scoring ./scoring
COPY sinks ./sinks
COPY data ./data
COPY deploy/alertmanager ./deploy/alertmanager
# Editable, so that the repository layout (deploy/, data/) stays where the code expects it.
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --home-dir /var/lib/yuqing yuqing \
    && mkdir -p /var/lib/yuqing/crawl /var/lib/yuqing/notify /var/lib/yuqing/models \
    && chown -R yuqing:yuqing /var/lib/yuqing

USER yuqing
# The default sentiment model is built offline from the package's lexicon (seconds).
RUN python -c "from scoring.sentiment import load_model; load_model()"

ENTRYPOINT ["yuqing"]
CMD ["--help"]
