#!/usr/bin/env bash
# The application processes of `make run`: scripts/services.sh start [PORT] | stop
# - the django-q2 cluster (ORM broker): manage.py qcluster
# - the web server: gunicorn on 127.0.0.1:PORT
# Pid files and logs are in .local/run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/.local/run"
PY="$ROOT/.venv/bin/python"
mkdir -p "$RUN"
cd "$ROOT"

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

stop_one() {
  if alive "$1"; then
    local pid; pid=$(cat "$RUN/$1.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    echo "stopped $1"
  fi
  rm -f "$RUN/$1.pid"
}

start() {
  local port=${1:-8000}
  # New accounts' set-password links point here (unless the environment names the public address).
  export TSUNAGU_PUBLIC_URL="${TSUNAGU_PUBLIC_URL:-http://127.0.0.1:$port}"
  if ! alive worker; then
    nohup "$PY" manage.py qcluster >>"$RUN/worker.log" 2>&1 &
    echo $! >"$RUN/worker.pid"
  fi
  if ! alive web; then
    # gunicorn's settings (limits, workers, preloading, JSON error answers) are in
    # backend/gunicorn.conf.py; bench/bench_http.py starts its server with the same arguments.
    # Served as production would: persistent database connections, DEBUG off unless the
    # environment asks for it (`make run DEBUG=1`).
    nohup "$ROOT/.venv/bin/gunicorn" -c "$ROOT/backend/gunicorn.conf.py" --bind "127.0.0.1:$port" \
      --access-logfile "$RUN/access.log" --error-logfile "$RUN/web.log" >>"$RUN/web.log" 2>&1 &
    echo $! >"$RUN/web.pid"
  fi
  local ok=""
  for _ in $(seq 100); do
    if "$PY" - "$port" <<'PYEOF' 2>/dev/null; then ok=1; break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/v1/health", timeout=2)
PYEOF
    sleep 0.2
  done
  [ -n "$ok" ] || { echo "the web server did not answer; see $RUN/web.log" >&2; tail -20 "$RUN/web.log" >&2; exit 1; }
  if [ -f "$RUN/banner.txt" ]; then cat "$RUN/banner.txt"; else "$PY" manage.py demo_banner --url "http://127.0.0.1:$port"; fi
}

case "${1:-}" in
  start) start "${2:-8000}" ;;
  stop) stop_one web; stop_one worker ;;
  *) echo "usage: $0 start [PORT] | stop" >&2; exit 2 ;;
esac
