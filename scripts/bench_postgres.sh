#!/usr/bin/env bash
# A private PostgreSQL server for benchmarks, configured for a large catalog
# (the "Postgres for a large catalog" settings of the README), beside the
# machine's own server, which keeps its defaults.
#
#   scripts/bench_postgres.sh start DIR PORT   # initdb into DIR (once), start on 127.0.0.1:PORT
#   scripts/bench_postgres.sh stop DIR         # stop it (DIR is kept; rm -rf it to free the disk)
#
# Then: DATABASE_URL=postgres://postgres@127.0.0.1:PORT/postgres SECRET_KEY=x \
#         .venv/bin/python manage.py bench --songs 10000000 ...
# The bench records the server's settings in its JSON ("server").
# Settings: SHARED_BUFFERS (default 6GB, a quarter of 24 GiB), MAX_WAL_SIZE
# (default 8GB), CHECKPOINT_TIMEOUT (default 15min), EFFECTIVE_CACHE_SIZE
# (default 16GB). Durability is as on the default server (fsync,
# full_page_writes and synchronous_commit on).
set -euo pipefail

cmd=${1:?usage: $0 start DIR PORT | stop DIR}
dir=${2:?the directory of the server}
bindir=$(dirname "$(command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)")

as_owner() {
  # initdb and the server refuse to run as root: run them as the postgres user.
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
start)
  port=${3:?the port}
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 >"$dir/initdb.log"
  fi
  options="-p $port -k $dir -c listen_addresses=127.0.0.1"
  options+=" -c shared_buffers=${SHARED_BUFFERS:-6GB} -c effective_cache_size=${EFFECTIVE_CACHE_SIZE:-16GB}"
  options+=" -c max_wal_size=${MAX_WAL_SIZE:-8GB} -c checkpoint_timeout=${CHECKPOINT_TIMEOUT:-15min}"
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$options" -w -t 120 start
  echo "postgres://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop
  ;;
*)
  echo "usage: $0 start DIR PORT | stop DIR" >&2
  exit 2
  ;;
esac
