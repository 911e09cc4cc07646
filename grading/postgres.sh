#!/usr/bin/env bash
# `make postgres`: a local PostgreSQL server for gradebooks and the tests (Debian's package).
#
# Installs the `postgresql` package when missing (as root, or with sudo), starts the first
# cluster that pg_lsclusters lists (PostgreSQL refuses to run as root: pg_ctlcluster runs it as
# the `postgres` user), waits until it accepts connections on 127.0.0.1, then makes sure the
# role and database of PG_URL exist (the role may create databases: the tests make one each).
# Idempotent. Prints the URL to put in INTERP_GRADEBOOK_URL.
set -euo pipefail

URL="${PG_URL:-postgresql+psycopg://interp:interp@127.0.0.1:5432/interp}"
if [[ ! "$URL" =~ ^postgresql\+psycopg://([^:@/]+):([^@/]*)@([^:/]+):([0-9]+)/([A-Za-z0-9_]+)$ ]]; then
  echo "PG_URL must look like postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE (got $URL)" >&2
  exit 2
fi
USER_NAME="${BASH_REMATCH[1]}" PASSWORD="${BASH_REMATCH[2]}" HOST="${BASH_REMATCH[3]}"
PORT="${BASH_REMATCH[4]}" DATABASE="${BASH_REMATCH[5]}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

if ! command -v pg_lsclusters >/dev/null; then
  echo "installing PostgreSQL (Debian's postgresql package)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

cluster="$(pg_lsclusters --no-header | awk -v port="$PORT" '$3 == port {print $1, $2, $4; exit}')"
if [ -z "$cluster" ]; then
  version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  echo "creating PostgreSQL cluster $version/main on port $PORT"
  as_root pg_createcluster --port "$PORT" "$version" main >/dev/null
  cluster="$version main down"
fi
read -r version name status <<<"$cluster"
if [ "$status" != "online" ]; then
  echo "starting PostgreSQL $version/$name (as the postgres user)"
  as_root pg_ctlcluster "$version" "$name" start
fi

for _ in $(seq 60); do
  pg_isready -q -h "$HOST" -p "$PORT" && break
  sleep 0.5
done
if ! pg_isready -q -h "$HOST" -p "$PORT"; then
  echo "PostgreSQL $version/$name does not accept connections on $HOST:$PORT; its log:" >&2
  tail -n 20 "/var/log/postgresql/postgresql-$version-$name.log" >&2 || true
  exit 1
fi

sql() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres -tAc "$1"; }
if [ "$(sql "SELECT 1 FROM pg_roles WHERE rolname = '$USER_NAME'")" != 1 ]; then
  sql "CREATE ROLE \"$USER_NAME\" LOGIN CREATEDB PASSWORD '$PASSWORD'"
fi
if [ "$(sql "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]; then
  sql "CREATE DATABASE \"$DATABASE\" OWNER \"$USER_NAME\""
fi
echo "PostgreSQL $version/$name is up: INTERP_GRADEBOOK_URL=${URL/:$PASSWORD@/:***@}"
