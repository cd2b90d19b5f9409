#!/bin/sh
# range-ab.sh: times etcdctl's large ranges on servers that already hold the
# same keys, alternating the servers round by round so that the drift of a
# shared machine hits them alike (the harness's --range-repeats loads each
# system anew instead, one after the other).
#
#   bench/harness/range-ab.sh ROUNDS NAME=CMD...
#
# Each NAME=CMD is a server command line with
# `--listen-client-urls http://127.0.0.1:PORT` (MetaStore and etcd both take
# it) on a data dir loaded beforehand, e.g. with
#   bin/benchmark --endpoints=127.0.0.1:PORT --clients=1000 --conns=100 put \
#     --key-size=8 --val-size=256 --key-space-size=1000000 --sequential-keys --total=1000000
# For every round, server and query it starts the server (cold), runs the
# query twice (cold, then warm) and stops it with SIGTERM. One line each:
#   round name query cold_s warm_s server_cpu_cold_s server_cpu_warm_s
# ETCDCTL (default bin/etcdctl) is the client; its output goes to /dev/null.
set -eu
rounds=$1
shift
etcdctl=${ETCDCTL:-bin/etcdctl}
hz=$(getconf CLK_TCK)

cpu() { # utime+stime of pid $1, in seconds
	awk -v hz="$hz" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

now() { date +%s.%N; }

query() { # query $1 against $ep
	case $1 in
	full) "$etcdctl" --endpoints="$ep" --command-timeout=10m get "" --prefix ;;
	desc-limit-10) "$etcdctl" --endpoints="$ep" --command-timeout=10m get "" --prefix --order=DESCEND --limit=10 ;;
	esac
}

run() { # run query $1; prints its wall and the server's cpu seconds
	c0=$(cpu "$pid")
	t0=$(now)
	query "$1" >/dev/null
	t1=$(now)
	c1=$(cpu "$pid")
	echo "$t0 $t1 $c0 $c1" | awk '{ printf "%.2f %.2f", $2 - $1, $4 - $3 }'
}

for r in $(seq "$rounds"); do
	for spec in "$@"; do
		name=${spec%%=*}
		cmd=${spec#*=}
		ep=$(echo "$cmd" | sed -n 's|.*--listen-client-urls http://\(127\.0\.0\.1:[0-9]*\).*|\1|p')
		for q in full desc-limit-10; do
			$cmd >/dev/null 2>&1 &
			pid=$!
			until "$etcdctl" --endpoints="$ep" --dial-timeout=200ms get health >/dev/null 2>&1; do sleep 0.05; done
			cold=$(run "$q")
			warm=$(run "$q")
			kill -TERM "$pid"
			wait "$pid" || true
			echo "$r $name $q $cold $warm" | awk '{ print $1, $2, $3, $4, $6, $5, $7 }'
		done
	done
done
