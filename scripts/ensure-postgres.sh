#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 for the database tests: use a running one, or
# install Debian's package and start a cluster. Prints nothing on success when one already runs.
set -euo pipefail
host=127.0.0.1
port=${PGPORT:-5432}
ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null || python3 - "$host" "$port" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}
if ready; then exit 0; fi
echo "PostgreSQL is not running on $host:$port: installing and starting it" >&2
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -1)
if [ -z "$version" ]; then echo "error: no PostgreSQL cluster configured" >&2; exit 1; fi
conf=/etc/postgresql/$version/main
# Trust local loopback connections: these are test databases on a developer or CI machine.
grep -q "^host all all 127.0.0.1/32 trust" "$conf/pg_hba.conf" || \
  sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
for _ in $(seq 30); do ready && break; sleep 1; done
ready || { echo "error: PostgreSQL did not start" >&2; exit 1; }
psql -h "$host" -p "$port" -U postgres -tc "select 1 from pg_database where datname='test'" | grep -q 1 || \
  psql -h "$host" -p "$port" -U postgres -c "create database test" >/dev/null
