#!/bin/sh
# guest-init.sh: /init of the vaio-nbd test guest (busybox sh, packed into
# the initramfs by scripts/build-guest).
#
# Kernel command line parameters (all optional):
#   vaio.seconds=N      how long to write, in seconds of guest uptime (10)
#   vaio.blocks=M       write 4 KiB blocks 0..M-1 of each disk (64)
#   vaio.seed=S         decimal seed for block choice and content (1)
#   vaio.disks=vda,vdb  disks to exercise, one writer per disk in parallel (vda)
#
# Each write puts one 4096-byte block on the disk:
#   bytes 0..127    header "VAIOBLK disk=D block=B seq=Q seed=S md5=H",
#                   space-padded to 127 bytes, then "\n"; H is the MD5 of
#                   bytes 128..4095
#   bytes 128..4095 "vaio disk=D block=B seq=Q seed=S\n" repeated, truncated
# Q is a per-disk sequence number, 1 for the first write.  Writes use
# O_DIRECT and fsync (a flush that reaches the NBD server), so a write the
# guest counts is acknowledged as durable.  After every write the guest
# reads back (O_DIRECT) the block itself and one previously written block
# and compares the MD5 of all 4096 bytes with the one it expects.
#
# Console protocol (what test/guest/lib.sh and verify-image parse):
#   VAIO-GUEST START disk=D seed=S blocks=M seconds=N
#   VAIO-GUEST ERROR disk=D op=write|read|verify|setup block=B ...
#   VAIO-GUEST PROGRESS disk=D writes=W   after every 5th write attempt
#                   (W: acknowledged writes so far; the host reads these
#                   to tell that a disk's I/O went on during a window)
#   VAIO-GUEST FINAL D B Q [A]   one line per block 0..M-1: Q is the last
#                   acknowledged seq (0: never written, must read as zeros);
#                   A, when present, is a later seq whose write failed, so
#                   the block may hold either Q or A
#   VAIO-GUEST DISK D writes=W verifies=V errors=E max_iter_ms=L
#                   (L: the longest write + verify iteration, a stall)
#   VAIO-GUEST DONE writes=W verifies=V errors=E kerrors=K
#                   (totals; errors includes K, the kernel's "I/O error" lines)
# then poweroff -f.

# shellcheck disable=SC2154  # vs, vm, ...: assigned through eval
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
mkdir -p /tmp
mount -t tmpfs tmpfs /tmp

say () { echo "VAIO-GUEST $*"; }

finish () {
  sync
  poweroff -f
  sleep 5
}

seconds=10 blocks=64 seed=1 disks=vda
read -r cmdline < /proc/cmdline
for arg in $cmdline; do
  case $arg in
    vaio.seconds=*) seconds=${arg#*=} ;;
    vaio.blocks=*) blocks=${arg#*=} ;;
    vaio.seed=*) seed=${arg#*=} ;;
    vaio.disks=*) disks=${arg#*=} ;;
  esac
done
disks=$(echo "$disks" | tr ',' ' ')

setup_errors=0
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
  if [ -f /lib/modules/$m.ko ]; then
    insmod /lib/modules/$m.ko || {
      say "ERROR disk=- op=setup block=- msg=insmod $m failed"
      setup_errors=$((setup_errors + 1))
    }
  fi
done

uptime_s () { read -r up _ < /proc/uptime; up=${up%.*}; }
# centiseconds of uptime in $cs ("1" prefix: no octal from a leading 0)
uptime_cs () { read -r up _ < /proc/uptime; cs=$(( ${up%.*} * 100 + 1${up#*.} - 100 )); }

for d in $disks; do
  i=0
  while [ ! -b "/dev/$d" ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
  if [ ! -b "/dev/$d" ]; then
    say "ERROR disk=$d op=setup block=- msg=no /dev/$d after 10 s"
    setup_errors=$((setup_errors + 1))
  fi
done

# Content of block $2 at seq $3 on disk $1 -> /tmp/$1.blk; $sum = its MD5.
mkblock () {
  unit="vaio disk=$1 block=$2 seq=$3 seed=$seed"
  yes "$unit" | head -c 3968 > "/tmp/$1.body"
  bsum=$(md5sum < "/tmp/$1.body")
  printf '%-127s\n' "VAIOBLK disk=$1 block=$2 seq=$3 seed=$seed md5=${bsum%% *}" > "/tmp/$1.blk"
  cat "/tmp/$1.body" >> "/tmp/$1.blk"
  sum=$(md5sum < "/tmp/$1.blk")
  sum=${sum%% *}
}

worker () {
  d=$1 idx=$2
  dev="/dev/$d" w=0 v=0 e=0 q=0 n=0
  x=$(( (seed + idx * 7919) % 2147483648 ))
  zsum=$(head -c 4096 /dev/zero | md5sum)
  zsum=${zsum%% *}
  wc=$(tr ' ' '-' 2>/dev/null < "/sys/block/$d/queue/write_cache")
  say "START disk=$d seed=$seed blocks=$blocks seconds=$seconds write_cache=${wc:-none}"
  [ -b "$dev" ] || { echo "$w $v 1" > "/tmp/$d.res"; return; }

  errmsg () { grep -v -m 1 records "/tmp/$d.err" || echo "dd failed"; }
  rnd () { x=$(( (x * 1103515245 + 12345) % 2147483648 )); r=$(( x / 65536 )); }

  # verify block $1: read it back (O_DIRECT) and compare MD5 with the
  # expected one (or the alternative after a failed write).
  verify () {
    eval "vs=\${s_$1:-0} vm=\${m_$1:-$zsum} va=\${a_$1:-} vam=\${am_$1:-}"
    if ! dd if="$dev" of="/tmp/$d.rb" bs=4096 skip="$1" count=1 iflag=direct 2>"/tmp/$d.err"; then
      e=$((e + 1))
      say "ERROR disk=$d op=read block=$1 want_seq=$vs msg=$(errmsg)"
      return
    fi
    v=$((v + 1))
    got=$(md5sum < "/tmp/$d.rb")
    got=${got%% *}
    if [ "$got" != "$vm" ] && { [ -z "$vam" ] || [ "$got" != "$vam" ]; }; then
      e=$((e + 1))
      if [ "$got" = "$zsum" ]; then
        hdr=zeros
      else
        hdr=$(head -c 100 "/tmp/$d.rb" | tr -c 'a-zA-Z0-9=. \n' '?' | head -n 1)
      fi
      say "ERROR disk=$d op=verify block=$1 want_seq=$vs${va:+/$va} got=[$hdr]"
    fi
  }

  uptime_s
  end=$((up + seconds))
  maxcs=0
  while :; do
    uptime_cs
    [ -z "${last:-}" ] || [ $((cs - last)) -le "$maxcs" ] || maxcs=$((cs - last))
    last=$cs
    [ $((cs / 100)) -lt "$end" ] || break
    rnd
    b=$((r % blocks))
    q=$((q + 1))
    mkblock "$d" $b $q
    if dd if="/tmp/$d.blk" of="$dev" bs=4096 seek=$b count=1 oflag=direct conv=notrunc,fsync 2>"/tmp/$d.err"; then
      w=$((w + 1))
      eval "was=\${s_$b:-}"
      if [ -z "$was" ]; then eval "l_$n=$b"; n=$((n + 1)); fi
      eval "s_$b=$q m_$b=$sum a_$b= am_$b="
    else
      e=$((e + 1))
      say "ERROR disk=$d op=write block=$b seq=$q msg=$(errmsg)"
      eval "a_$b=$q am_$b=$sum"
    fi
    verify $b
    if [ $n -gt 0 ]; then
      rnd
      eval "verify \$l_$((r % n))"
    fi
    [ $((q % 5)) -ne 0 ] || say "PROGRESS disk=$d writes=$w"
  done

  b=0
  while [ $b -lt "$blocks" ]; do
    eval "say \"FINAL $d $b \${s_$b:-0}\${a_$b:+ \$a_$b}\""
    b=$((b + 1))
  done
  say "DISK $d writes=$w verifies=$v errors=$e max_iter_ms=$((maxcs * 10))"
  echo "$w $v $e" > "/tmp/$d.res"
}

i=0
for d in $disks; do
  worker "$d" $i &
  i=$((i + 1))
done
wait

tw=0 tv=0 te=$setup_errors
for d in $disks; do
  if read -r w v e < "/tmp/$d.res"; then
    tw=$((tw + w)) tv=$((tv + v)) te=$((te + e))
  else
    say "ERROR disk=$d op=setup block=- msg=writer left no result"
    te=$((te + 1))
  fi
done
kerr=$(dmesg | grep -c "I/O error")
[ "$kerr" -gt 0 ] && dmesg | grep "I/O error" | head -n 20 | sed 's/^/VAIO-GUEST ERROR disk=- op=kernel block=- msg=/'
say "DONE writes=$tw verifies=$tv errors=$((te + kerr)) kerrors=$kerr"
finish
