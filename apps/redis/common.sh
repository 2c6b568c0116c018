# Sourced by setup, workload and checker: start a redis-server in the
# foreground (--daemonize no) as a child of the calling script, on a unix
# socket in a private temporary directory (no TCP port), with the data
# directory $1, AOF on with appendfsync always, no automatic RDB snapshots,
# and its log in the temporary directory (redis logs to stdout otherwise,
# which would be taken for the application's acknowledgements).
# Sets $rtmp, $sock, $rpid; redis_stop stops it and waits for it.
redis_start() {
  rtmp=$(mktemp -d /tmp/unplug-redis-XXXXXX)
  sock="$rtmp/redis.sock"
  redis-server --daemonize no --port 0 --unixsocket "$sock" --dir "$1" \
    --appendonly yes --appendfsync always --appenddirname appendonlydir \
    --save '' --logfile "$rtmp/log" --loglevel warning >/dev/null 2>&1 </dev/null &
  rpid=$!
  i=0
  while [ "$i" -lt 100 ]; do
    if [ -S "$sock" ] && [ "$(redis-cli -s "$sock" ping 2>/dev/null)" = PONG ]; then return 0; fi
    kill -0 "$rpid" 2>/dev/null || return 1
    sleep 0.05; i=$((i + 1))
  done
  return 1
}
redis_stop() {  # $1: the shutdown command (SHUTDOWN, SHUTDOWN NOSAVE)
  [ -n "$rpid" ] || return 0
  redis-cli -s "$sock" ${1:-SHUTDOWN} >/dev/null 2>&1 || true
  i=0
  while kill -0 "$rpid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  kill -9 "$rpid" 2>/dev/null || true
  wait "$rpid" 2>/dev/null || true
  rpid=
}
redis_cleanup() { redis_stop "SHUTDOWN NOSAVE"; rm -rf "$rtmp"; }
# (every command above tolerates failure: callers run under set -e)
