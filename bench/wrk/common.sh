# common.sh - shell helpers of the wrk load tests (sourced by bench/bench_rest.sh
# and bench/worker/bench_worker.sh). Expects $py (the Python to use) and $tmp.

# A TCP port on 127.0.0.1 that nothing listens on right now.
qz_free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# qz_wait_up URL LOG: wait (up to 20 s) for URL/health; on failure print LOG and exit 1.
qz_wait_up() {
  for _ in $(seq 400); do curl -fs "$1/health" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "bench: $1 did not start:" >&2; cat "$2" >&2; exit 1
}

# qz_wrk_result NAME WRK_OUTPUT LOG: parse wrk's RESULT line (bench/wrk/common.lua)
# into r_* variables; exit 1 on a missing line, socket errors or non-2xx answers.
qz_wrk_result() {
  local line
  line=$(grep '^RESULT ' "$2") || { echo "bench: no RESULT from wrk ($1)"; cat "$2"; exit 1; }
  eval "$(echo "${line#RESULT }" | tr ' ' '\n' | sed 's/^/r_/')"
  if [ "$r_errors" -ne 0 ] || [ "$r_non2xx" -ne 0 ]; then
    echo "bench: $1: $r_errors socket errors, $r_non2xx non-2xx answers"; cat "$2"; tail -5 "$3"; exit 1
  fi
}
