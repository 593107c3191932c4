# Shared by the bench scripts: measuring one run of a git command against a
# server process. Source it; it needs $work (a scratch directory).

cpu_of() { # user+system ticks of a process and its waited-for children
  awk '{print $14+$15+$16+$17}' "/proc/$1/stat"
}
settled_cpu() { # cpu_of once it stops moving: a CGI child may still be finishing
  local last now
  last=$(cpu_of "$1")
  for _ in $(seq 50); do
    sleep 0.1
    now=$(cpu_of "$1")
    [ "$now" = "$last" ] && break
    last=$now
  done
  echo "$now"
}
rx_bytes() { awk '/^ *lo:/ {print $2}' /proc/net/dev; }
hz=$(getconf CLK_TCK)

# The S3 calls a GitClaw log at $work/gitclaw.err shows (0 without one).
s3_calls() { grep -c -E 'S3 call|S3 key not found' "$work/gitclaw.err" 2>/dev/null || true; }

run_once() { # run_once PID FUNCTION...: "wall cpu bytes s3-calls client-cpu" of one run
  # (client CPU: user+system time of the git commands the function ran)
  local pid=$1; shift
  rm -rf "$work/client"
  # What the operation starts from (an existing clone, say) is set up untimed, by
  # a function named setup-FUNCTION when there is one.
  if declare -F "setup-$1" >/dev/null; then "setup-$1" >/dev/null 2>&1; fi
  local c0 b0 t0 t1 c1 b1 s0 s1 k0 k1 me=$BASHPID
  s0=$(s3_calls); c0=$(settled_cpu "$pid"); b0=$(rx_bytes)
  k0=$(awk '{print $16+$17}' "/proc/$me/stat"); t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; return 1; }
  t1=$(date +%s.%N); k1=$(awk '{print $16+$17}' "/proc/$me/stat")
  b1=$(rx_bytes); c1=$(settled_cpu "$pid"); s1=$(s3_calls)
  echo "$(echo "$t1 - $t0" | bc) $(echo "scale=3; ($c1 - $c0) / $hz" | bc) $((b1 - b0)) $((s1 - s0)) $(echo "scale=3; ($k1 - $k0) / $hz" | bc)"
}

summary() { # medians of the runs, then the first run:
  # wall cpu bytes calls1 calls-median wall1 cpu1 client-cpu client-cpu1
  printf '%s\n' "$@" | python3 -c '
import sys
runs = [[float(x) for x in line.split()] for line in sys.stdin if line.strip()]
med = lambda k: sorted(r[k] for r in runs)[(len(runs) - 1) // 2]
first = runs[0]
print(med(0), med(1), med(2), first[3], med(3), first[0], first[1], med(4), first[4])'
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() { # wait_port PORT: until something listens there (10 s at most)
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on port $1" >&2; return 1
}

# services_unless_named PREFIX: when S3_BUCKET is unset, a throw-away Garage (bucket
# PREFIX-<time>) and, when DATABASE_URL is unset too, a throw-away PostgreSQL, on
# loopback as the tests use; sets own_garage / own_pg for the caller's cleanup.
services_unless_named() {
  [ -z "${S3_BUCKET:-}" ] || return 0
  eval "$("$root/scripts/garage.sh")"
  own_garage=$GITCLAW_TEST_GARAGE_DIR
  export S3_ENDPOINT=$GITCLAW_TEST_S3_ENDPOINT S3_REGION=$GITCLAW_TEST_S3_REGION \
    S3_ACCESS_KEY_ID=$GITCLAW_TEST_S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY=$GITCLAW_TEST_S3_SECRET_ACCESS_KEY \
    S3_BUCKET=$1-$(date +%s) S3_AUTO_CREATE_BUCKET=true S3_USE_PATH_STYLE=true
  if [ -z "${DATABASE_URL:-}" ]; then
    eval "$("$root/scripts/postgres.sh")"
    own_pg=$GITCLAW_TEST_PG_DIR
    export DATABASE_URL=$GITCLAW_TEST_POSTGRES_URL
  fi
}

# --- serving one repository from both servers (compare.sh, load.sh) ----------
# They need $root, $work, a `pids` array (every server started is added, for the
# caller's cleanup) and, for GitClaw, its binary in $gitclaw.

need_bench_tools() { # lighttpd, bc and GNU time, from apt when missing
  if ! command -v lighttpd >/dev/null 2>&1 || ! command -v bc >/dev/null 2>&1 || ! [ -x /usr/bin/time ]; then
    apt-get update -qq && apt-get install -y -qq lighttpd time bc >/dev/null
  fi
}

serve_copy() { # serve_copy SRC: a repacked bare copy of SRC at $work/served/bench.git;
  # sets objects and packsize (KiB)
  git clone -q --bare "$1" "$work/served/bench.git"
  # A copy of a partial clone's packs is marked "promisor": git would repack it
  # apart and without bitmaps. The benchmark's repositories are complete.
  rm -f "$work"/served/bench.git/objects/pack/*.promisor
  git -C "$work/served/bench.git" config http.receivepack true
  git -C "$work/served/bench.git" config uploadpack.allowFilter true
  git -C "$work/served/bench.git" config uploadpack.allowReachableSHA1InWant true
  git -C "$work/served/bench.git" repack -adq
  objects=$(git -C "$work/served/bench.git" count-objects -v | awk '/^in-pack/ {print $2}')
  packsize=$(git -C "$work/served/bench.git" count-objects -v | awk '/^size-pack/ {print $2}')
}

start_http_backend() { # git http-backend under lighttpd on a free port, serving $work/served;
  # sets ref_pid and ref_url; each request's peak RSS (KiB) is appended to $rsslog
  local backend
  backend=$(git --exec-path)/git-http-backend
  [ -x "$backend" ] || backend=/usr/lib/git-core/git-http-backend
  ref_port=$(free_port)
  rsslog=$work/http-backend-rss.log
  cat > "$work/cgi-wrapper.sh" <<WRAPPER
#!/bin/sh
exec /usr/bin/time -a -o $rsslog -f "%M" $backend
WRAPPER
  chmod +x "$work/cgi-wrapper.sh"
  cat > "$work/lighttpd.conf" <<CONF
server.document-root = "$work/served"
server.port = $ref_port
server.bind = "127.0.0.1"
server.modules = ("mod_alias", "mod_cgi", "mod_setenv")
server.errorlog = "$work/lighttpd.err"
alias.url = ("/git/" => "$work/cgi-wrapper.sh/")
\$HTTP["url"] =~ "^/git/" {
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "$work/served", "GIT_HTTP_EXPORT_ALL" => "1")
}
CONF
  lighttpd -D -f "$work/lighttpd.conf" & pids+=($!)
  ref_pid=$!
  ref_url=http://127.0.0.1:$ref_port/git/bench.git
  wait_port "$ref_port"
}

start_gitclaw() { # `$gitclaw serve` on a free port with the environment as it is, and the
  # repository bench/bench created; sets claw_pid and claw_url (its log: $work/gitclaw.err)
  local port
  port=$(free_port)
  export GITCLAW_LISTEN=127.0.0.1:$port
  # (Started again on the same database, the repository is there already.)
  "$gitclaw" repo create bench/bench >/dev/null 2>>"$work/cli.err" || true
  "$gitclaw" serve 2>"$work/gitclaw.err" & pids+=($!)
  claw_pid=$!
  wait_port "$port"
  claw_url=http://127.0.0.1:$port/bench/bench.git
}

push_to_gitclaw() { # push_to_gitclaw SRC BRANCH [no-gc]: every branch and tag of SRC to $claw_url, then `gitclaw gc`
  # The default branch first: the first branch pushed to an empty repository
  # becomes its HEAD, as HEAD is in the repository git serves.
  git -C "$1" push -q "$claw_url" "$2"
  git -C "$1" push -q "$claw_url" 'refs/heads/*:refs/heads/*' 'refs/tags/*:refs/tags/*'
  # The comparison is with a repacked repository on both sides.
  [ "${3:-}" = no-gc ] || "$gitclaw" gc bench/bench >/dev/null 2>>"$work/cli.err"
}
