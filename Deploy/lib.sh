# Shared by Deploy/run, Deploy/test and Deploy/bench: installs what is missing and starts
# PostgreSQL and Redis on loopback under a directory of our own. Source it; never run it.

LINLI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_BIN=/usr/lib/postgresql/15/bin
APT_PACKAGES=(postgresql-15 postgresql-client-15 redis-server libhiredis-dev protobuf-compiler libprotobuf-dev
              protobuf-c-compiler libprotobuf-c-dev libssl-dev
              openssl pkg-config python3 python3-venv python3-pip)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs the Debian packages the scripts need, once.
ensure_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # The Debian packages start cluster-wide services we do not use.
  service postgresql stop >/dev/null 2>&1 || true
  service redis-server stop >/dev/null 2>&1 || true
}

# pg_start DIR PORT [extra postgres -c settings...]: a cluster in DIR/pg owned by `postgres`,
# listening on 127.0.0.1:PORT, with login role and database `linli` (password `linli`).
pg_start() {
  local dir="$1" port="$2"; shift 2
  mkdir -p "$dir"
  chmod 755 "$dir"  # the postgres user must reach the data directory inside it
  local data="$dir/pg"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    chown -R postgres:postgres "$data"
    chmod 700 "$data"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  local opts="-c listen_addresses=127.0.0.1 -p $port -k $data -c max_connections=200 -c shared_buffers=256MB"
  for setting in "$@"; do opts="$opts -c $setting"; done
  if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 -o "$opts" start >/dev/null
  fi
  psql_admin "$dir" "$port" -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'linli'" | grep -q 1 ||
    psql_admin "$dir" "$port" -c "CREATE ROLE linli LOGIN CREATEROLE PASSWORD 'linli'" >/dev/null
  # The application role reaches tenant tables only by switching to a tenant role
  # (SET LOCAL ROLE); it holds no rights on them itself.
  psql_admin "$dir" "$port" -c "ALTER ROLE linli NOINHERIT" >/dev/null
  psql_admin "$dir" "$port" -tAc "SELECT 1 FROM pg_database WHERE datname = 'linli'" | grep -q 1 ||
    psql_admin "$dir" "$port" -c "CREATE DATABASE linli OWNER linli" >/dev/null
}

# psql_admin DIR PORT ARGS...: psql as the superuser over the cluster's socket.
psql_admin() {
  local dir="$1" port="$2"; shift 2
  runuser -u postgres -- psql -h "$dir/pg" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
}

pg_stop() {
  [ -f "$1/pg/PG_VERSION" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$1/pg" -m fast -w stop >/dev/null 2>&1 || true
}

# redis_start DIR PORT: a Redis without persistence on 127.0.0.1:PORT.
redis_start() {
  local dir="$1" port="$2"
  mkdir -p "$dir/redis"
  if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir/redis" --daemonize yes \
      --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log" --save "" --appendonly no >/dev/null
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "redis did not start; see $dir/redis/redis.log" >&2
    return 1
  fi
}

redis_stop() { redis-cli -p "$1" shutdown nosave >/dev/null 2>&1 || true; }

# tls_make DIR: a development CA and a server certificate for 127.0.0.1 and localhost.
tls_make() {
  local dir="$1/tls"
  [ -f "$dir/server.crt" ] && return 0
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
      -subj "/CN=Linli development CA" -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
      -extfile server.ext -out server.crt 2>/dev/null
    rm -f server.csr server.ext
    chmod 600 ca.key server.key
  )
}

# python_env DIR: a virtualenv with grpcio and grpcio-tools from PyPI.
python_env() {
  local venv="$1/venv"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import grpc, grpc_tools" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "grpcio>=1.60" "grpcio-tools>=1.60"
  fi
  echo "$venv/bin/python"
}

# linli_build [swift build args...]: builds the `linli` binary and prints its path; fails when
# the build fails (callers use `linli=$(linli_build) || exit 1`: set -e does not reach into $(...)).
linli_build() {
  (cd "$LINLI_ROOT" && swift build --product linli "$@" >&2 && swift build --product linli-device "$@" >&2) || return 1
  echo "$(cd "$LINLI_ROOT" && swift build --show-bin-path "$@")/linli"
}

# stack_env DIR PG_PORT REDIS_PORT: the LINLI_* settings for a stack started above.
stack_env() {
  export LINLI_POSTGRES_HOST=127.0.0.1 LINLI_POSTGRES_PORT="$2" LINLI_POSTGRES_USER=linli \
         LINLI_POSTGRES_PASSWORD=linli LINLI_POSTGRES_DATABASE=linli \
         LINLI_REDIS_HOST=127.0.0.1 LINLI_REDIS_PORT="$3" \
         LINLI_TLS_CERTIFICATE="$1/tls/server.crt" LINLI_TLS_KEY="$1/tls/server.key"
}

# The toolchain's formatter in lint mode over everything but generated code; warnings fail.
lint_sources() {
  (cd "$LINLI_ROOT" && find Sources Tenancy Tests -name '*.swift' -not -path 'Sources/LinliAPI/*' -print0 |
     xargs -0 swift format lint --strict --parallel --configuration .swift-format) || return 1
  # The server's statements go through `run`, which answers when the connection closes under
  # them; postgres-nio's own `query`/`execute` can wait forever then (Tenancy/PostgresConnection+Run.swift).
  local bare
  bare=$(cd "$LINLI_ROOT" && grep -rnE '\.(query|execute)\(' Sources Tenancy --include='*.swift' |
    grep -v -e '^Sources/LinliAPI/' -e '^Tenancy/PostgresConnection+Run.swift:' -e 'query(intent:' || true)
  if [ -n "$bare" ]; then echo "statements must use connection.run(...):"; echo "$bare"; return 1; fi
}
