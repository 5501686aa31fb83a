#!/usr/bin/env bash
# node-ctl.sh kill DIR ID            kill -9 node ID of the dev cluster in DIR (by its pid file)
# node-ctl.sh start DIR ID RINGRAFTD start it again, the way `ringraftd dev` starts its nodes
#                                    (ringraftd run --config DIR/nID/ringraftd.toml --pid-file ...)
set -euo pipefail
action=$1 dir=$2 id=$3
node_dir="$dir/n$id"
case "$action" in
kill)
    pid=$(cat "$node_dir/ringraftd.pid")
    kill -9 "$pid"
    # Bounded wait until the process is really gone (its socket then refuses connections). The
    # dev launcher reaps its children only when it stops, so a zombie counts as gone.
    for _ in $(seq 1 200); do
        state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        if [[ -z "$state" || "$state" == Z ]]; then
            exit 0
        fi
        sleep 0.05
    done
    echo "node $id (pid $pid) did not die" >&2
    exit 1
    ;;
start)
    ringraftd=$4
    nohup "$ringraftd" run --config "$node_dir/ringraftd.toml" --pid-file "$node_dir/ringraftd.pid" \
        >>"$node_dir/ringraftd.log" 2>&1 </dev/null &
    ;;
*)
    echo "usage: $0 kill|start DIR ID [RINGRAFTD]" >&2
    exit 2
    ;;
esac
