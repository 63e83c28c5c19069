# caliper-store in a container: built in one stage, run in a slim one as a user without rights.
# Build: docker build -t caliper-store .   Run: see compose.yaml, or docs/operations.md.
# Not built on the project's CI machines (they run no container engine); tests/operations/
# test_deployment.py checks that every file copied here exists and that the entry point is the
# installed command.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The PostgreSQL driver comes with the extra; SQLite needs nothing more.
RUN python -m venv /opt/caliper-store \
    && /opt/caliper-store/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/caliper-store/bin/pip install --no-cache-dir '.[postgres]'

FROM python:3.12-slim
COPY --from=build /opt/caliper-store /opt/caliper-store
RUN useradd --system --uid 10001 --home-dir /data --create-home caliper
USER caliper
WORKDIR /data
# The embedded default keeps its SQLite file on this volume; with PostgreSQL it stays empty.
VOLUME ["/data"]
ENV PATH="/opt/caliper-store/bin:$PATH" \
    CALIPER_STORE_HOST=0.0.0.0 \
    CALIPER_STORE_PORT=8080 \
    CALIPER_STORE_DATABASE_URL=sqlite:////data/caliper.db \
    CALIPER_STORE_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# SIGTERM (docker stop) drains: requests already read are answered after their commit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["caliper-store"]
CMD ["serve"]
