# Small, non-root, signal-friendly image for netlog-bot.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/netlog netlog \
    && mkdir -p /var/lib/netlog && chown netlog /var/lib/netlog
COPY --from=build /venv /venv
COPY config/netlog.example.yaml /etc/netlog/netlog.example.yaml
ENV PATH=/venv/bin:$PATH \
    NETLOG_HTTP_PORT=8080 \
    PYTHONUNBUFFERED=1 \
    NETLOG_DB_URL=sqlite:////var/lib/netlog/netlog.db
EXPOSE 8080
# Numeric, so Kubernetes' runAsNonRoot can check it (it refuses a user name it cannot resolve).
USER 10001
WORKDIR /var/lib/netlog
# Exec form: the bot is PID 1 and gets SIGTERM directly; it stops pulling, stores and
# acks what it took, and exits within 25 s (bot/app.py's SHUTDOWN_BUDGET; Kubernetes' default
# grace period is 30 s).
ENTRYPOINT ["netlog-bot"]
CMD ["run"]
