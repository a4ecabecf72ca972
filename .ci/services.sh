#!/usr/bin/env bash
# Starts (if stopped) the local services the test suite uses. Idempotent; safe on a developer machine.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! up 5432; then
  echo "[ci] starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! up 4222; then
  echo "[ci] starting NATS"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
fi
for port in 5432 4222; do
  for _ in $(seq 1 30); do up "$port" && break; sleep 1; done
  up "$port" || { echo "[ci] service on port $port did not come up"; exit 1; }
done
