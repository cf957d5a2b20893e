#!/bin/bash
# Limits change without a restart: the filter re-reads
# <sioc-state-dir>/settings (what `vaioctl apply` writes) within ~100 ms of
# a change and applies it; a bad file is reported with its name, line and
# key and changes nothing; removing the file restores the parameters.
source "$(dirname "$0")/lib.sh"

put_settings () { printf '%s\n' "$@" > "$T/settings.tmp"; mv "$T/settings.tmp" "$T/vm/settings"; }

truncate -s 256M "$T/disk.img"
mkdir -m 0700 "$T/vm"
nbdkit -f -U "$T/vm.sock" --filter="$SIOC_FILTER" --filter=delay \
  file "$T/disk.img" delay-read=1ms delay-write=1ms \
  sioc-limit-iops=100 sioc-state-dir="$T/vm" 2> "$T/vm.log" &
SERVER_PIDS+=($!)
wait_socket "$T/vm.sock"
fio --name=t --ioengine=nbd --uri="nbd+unix:///?socket=$T/vm.sock" \
  --rw=randread --bs=4k --iodepth=16 --runtime=12 --time_based=1 \
  --size=256M --output-format=json --output="$T/fio.json" > /dev/null 2>&1 &
fio_pid=$!
sleep 1
r=$(rate admitted-units vm 2); echo "parameter sioc-limit-iops=100: $r IOPS"
within "$r" 100 5 || fail "before the change: $r IOPS, want 100"

put_settings "# written by vaioctl apply" "sioc-limit-iops = 300" "sioc-shares=high"
for i in $(seq 20); do
  [ "$(counter settings-reloads vm)" -ge 1 ] && break; sleep 0.05
done
[ "$(counter settings-reloads vm)" -ge 1 ] || fail "settings change not seen within 1 s"
[ "$(counter shares vm)" = 2000 ] || fail "shares not applied: $(counter shares vm)"
sleep 0.3
r=$(rate admitted-units vm 2); echo "settings sioc-limit-iops=300: $r IOPS"
within "$r" 300 5 || fail "after the change: $r IOPS, want 300"

put_settings "sioc-limit-iops=fast"
for i in $(seq 20); do
  [ "$(counter settings-errors vm)" -ge 1 ] && break; sleep 0.05
done
[ "$(counter settings-errors vm)" -ge 1 ] || fail "bad settings file not reported"
grep -q "$T/vm/settings:1: sioc-limit-iops: 'fast'" "$T/vm.log" ||
  fail "error does not name the file, line and key: $(grep settings "$T/vm.log")"
r=$(rate admitted-units vm 1.5); echo "bad settings file ignored: $r IOPS"
within "$r" 300 5 || fail "bad settings changed the rate to $r"

rm "$T/vm/settings"
sleep 0.4
r=$(rate admitted-units vm 1.5); echo "settings removed, back to the parameter: $r IOPS"
within "$r" 100 5 || fail "after removing the settings: $r IOPS, want 100"
wait $fio_pid || fail "fio failed"
