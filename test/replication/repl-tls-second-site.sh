#!/bin/bash
# A second site: the replica runs in its own network namespace, reached
# over a veth link by TCP with TLS PSK (nbdkit --tls=require).  The
# replica converges to the source; a plain connection is refused; the key
# never shows in the filter's log or command line.
. "$(dirname "$0")/lib.sh"

ns_a=vaio-repl-a-$$ ns_b=vaio-repl-b-$$
veth_a=vra$$ veth_b=vrb$$
net=10.254.$(( $$ % 250 ))
addr_a=$net.1 addr_b=$net.2

ip netns add "$ns_a"
EXTRA_CLEANUP+=("ip netns del $ns_a")
ip netns add "$ns_b"
EXTRA_CLEANUP+=("ip netns del $ns_b")
ip link add "$veth_a" type veth peer name "$veth_b"
ip link set "$veth_a" netns "$ns_a"
ip link set "$veth_b" netns "$ns_b"
ip -n "$ns_a" addr add "$addr_a/24" dev "$veth_a"
ip -n "$ns_b" addr add "$addr_b/24" dev "$veth_b"
for ns in "$ns_a" "$ns_b"; do
  ip -n "$ns" link set lo up
done
ip -n "$ns_a" link set "$veth_a" up
ip -n "$ns_b" link set "$veth_b" up

key=$(openssl rand -hex 32)
(umask 077 && echo "vaio:$key" > "$T/psk")

truncate -s 16M "$T/src.img" "$T/rep.img"
ip netns exec "$ns_b" nbdkit -f --tls=require --tls-psk="$T/psk" \
  -i "$addr_b" -p 10809 file "$T/rep.img" 2>>"$T/replica.log" &
PIDS+=("$!")
for i in $(seq 100); do
  ip netns exec "$ns_b" ss -ltn | grep -q "$addr_b:10809" && break
  [ "$i" = 100 ] && fail "replica never listened"
  sleep 0.1
done

# Without TLS the replica refuses us.
if ip netns exec "$ns_a" nbdinfo --size "nbd://$addr_b:10809/" >/dev/null 2>&1; then
  fail "the replica accepted a connection without TLS"
fi

SOURCE_PREFIX=(ip netns exec "$ns_a")
start_source "$T/src.img" "$T/src.sock" "$T/state" \
  "nbds://vaio@$addr_b:10809/" repl-tls-psk-file="$T/psk" \
  repl-journal-size=16M
uri=$(unix_uri "$T/src.sock")
wait_in_sync "$T/state" 60
wait_stat "$T/state" replica_connected 1 5

fio --name=w --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k-64k \
  --iodepth=8 --size=16M --runtime=2 --time_based=1 --randrepeat=0 \
  --output=/dev/null || fail "fio failed"
qemu-io -f raw -t writeback -c "write -P 0x5a 3M 1M" -c flush "$uri" \
  >/dev/null || fail "qemu-io failed"
grep -q "$key" "/proc/$SOURCE_PID/cmdline" && fail "key on the command line"
stop_pid "$SOURCE_PID"
grep -q "$key" "$T/source.log" && fail "key in the log"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"
echo "ok: second site over TLS PSK converged"
