# Sourced by test/integration/lib.sh and test/guest/lib.sh.

# two_vm_yaml FILE: the two-VM cluster the vaioctl and guest tests share:
# host1 with nbdkit's cache + rate filters, vm1 (policy gold: cache
# writethrough + rate) and vm2 (silver: cache), 32 MiB images in $T.
# Uses $T and $MAN from the sourcing lib.
two_vm_yaml () {
  local f=$1
  truncate -s 32M "$T/vm1.img" "$T/vm2.img"
  cat > "$f" <<YAML
cluster: test
hosts:
  - name: host1
    state-dir: state/host1
    filters:
      - $MAN/nbdkit-cache.yaml
      - $MAN/nbdkit-rate.yaml
policies:
  - name: gold
    caching:
      cache: writethrough
    sioc:
      rate: 10G
  - name: silver
    caching: {}
vms:
  - name: vm1
    host: host1
    disks:
      - name: disk0
        image: vm1.img
        policy: gold
  - name: vm2
    host: host1
    disks:
      - name: disk0
        image: vm2.img
        policy: silver
YAML
}
