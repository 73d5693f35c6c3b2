#!/bin/sh
# Roles of the nas image: each is one ordinary command, configured by environment variables,
# so the same topology runs without Docker (see docs/scaling.md); the integration
# test tests/cluster/test_cluster_integration.py starts its processes through this script.
#
#   ray-head    ray start --head --block        RAY_PORT (6379), RAY_NUM_CPUS, RAY_NUM_GPUS,
#                                               RAY_RESOURCES (JSON), RAY_DASHBOARD (true)
#   ray-worker  ray start --block --address     RAY_ADDRESS (head host:port), RAY_NUM_CPUS, ...
#   mlflow      mlflow server                   MLFLOW_BACKEND_STORE_URI,
#                                               MLFLOW_ARTIFACTS_DESTINATION, MLFLOW_PORT (5000)
#   serve       nas serve (API + workers)       NAS_HOST, NAS_PORT (8000), NAS_WORKERS (1)
#   worker      nas worker                      DATABASE_URL, NAS_OPTUNA_STORAGE, ...
#   help        this text
#   anything else runs as given (`nas search ...`, `bash`).
#
# Arguments after the role are appended to its command. RAY_NODE_IP sets the address this
# node announces (default: the address of the host name). With NAS_RAY_JOIN=1, `serve` and
# `worker` first join the Ray cluster at RAY_ADDRESS as a node without CPUs or GPUs (more
# `ray start` options in RAY_JOIN_ARGS): a Ray driver (the search) must run on a node of the
# cluster; trials then run on the other nodes.
set -eu

node_ip() {
  if [ -n "${RAY_NODE_IP:-}" ]; then
    printf '%s\n' "$RAY_NODE_IP"
  else
    python -c 'import socket; print(socket.gethostbyname(socket.gethostname()))'
  fi
}

require() {
  # require NAME: fail with a message unless the variable NAME is set and not empty.
  eval "value=\${$1:-}"
  if [ -z "$value" ]; then
    echo "entrypoint: set $1 ($2)" >&2
    exit 2
  fi
}

join_ray() {
  # RAY_JOIN_ARGS: more `ray start` options for the join, split on blanks (e.g. ports).
  if [ "${NAS_RAY_JOIN:-0}" = "1" ]; then
    require RAY_ADDRESS "the Ray head, host:port"
    # shellcheck disable=SC2086
    ray start --address "$RAY_ADDRESS" --node-ip-address "$(node_ip)" \
      --num-cpus 0 --num-gpus 0 --disable-usage-stats ${RAY_JOIN_ARGS:-}
  fi
}

role="${1:-help}"
[ "$#" -gt 0 ] && shift

case "$role" in
  ray-head | ray-worker)
    if [ -n "${RAY_NUM_CPUS:-}" ]; then set -- "$@" --num-cpus "$RAY_NUM_CPUS"; fi
    if [ -n "${RAY_NUM_GPUS:-}" ]; then set -- "$@" --num-gpus "$RAY_NUM_GPUS"; fi
    if [ -n "${RAY_RESOURCES:-}" ]; then set -- "$@" --resources "$RAY_RESOURCES"; fi
    if [ -n "${RAY_OBJECT_STORE_MEMORY:-}" ]; then
      set -- "$@" --object-store-memory "$RAY_OBJECT_STORE_MEMORY"
    fi
    if [ "$role" = ray-head ]; then
      exec ray start --head --block --disable-usage-stats \
        --node-ip-address "$(node_ip)" --port "${RAY_PORT:-6379}" \
        --include-dashboard "${RAY_DASHBOARD:-true}" \
        --dashboard-host "${RAY_DASHBOARD_HOST:-0.0.0.0}" "$@"
    fi
    require RAY_ADDRESS "the Ray head, host:port"
    exec ray start --block --disable-usage-stats \
      --address "$RAY_ADDRESS" --node-ip-address "$(node_ip)" "$@"
    ;;
  mlflow)
    require MLFLOW_BACKEND_STORE_URI "e.g. postgresql+psycopg://user:password@host:5432/mlflow"
    exec mlflow server \
      --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
      --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-./mlartifacts}" \
      --serve-artifacts \
      --host "${MLFLOW_HOST:-0.0.0.0}" --port "${MLFLOW_PORT:-5000}" \
      --workers "${MLFLOW_WORKERS:-2}" "$@"
    ;;
  serve)
    join_ray
    exec nas serve --host "${NAS_HOST:-0.0.0.0}" --port "${NAS_PORT:-8000}" \
      --workers "${NAS_WORKERS:-1}" "$@"
    ;;
  worker)
    join_ray
    exec nas worker "$@"
    ;;
  help | --help | -h)
    sed -n '2,/^set -eu/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
