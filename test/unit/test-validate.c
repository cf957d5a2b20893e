/* vaio-nbd unit test: the VAIO rules and cross-references checked after
 * parsing (chain/validate.c).
 *
 * Each case writes a config into a fresh directory (with images a.img and
 * b.img, and secret files with chosen modes), loads the test manifests
 * from the fixture tree and compares every message exactly, @TMP@
 * standing for the scratch directory.  The 8-line header gives host1 the
 * caching, replication and encryption filters, host2 caching only, so a
 * case's own YAML starts at line 9.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chainutil.h"
#include "testutil.h"

static char *
header (void)
{
  char *m = tu_fixture ("manifests"), *h;

  ck_assert_int_ne (
      asprintf (&h,
                "cluster: lab\n"
                "hosts:\n"
                "  - name: host1\n"
                "    state-dir: state/host1\n"
                "    filters: [%s/cache.yaml, %s/repl.yaml, %s/crypt.yaml]\n"
                "  - name: host2\n"
                "    state-dir: state/host2\n"
                "    filters: [%s/cache.yaml]\n",
                m, m, m, m),
      -1);
  free (m);
  return h;
}

/* Validate header + body; with_inventory false passes hf = NULL. */
static char *
validate_text (const char *dir, const char *body, bool with_inventory)
{
  struct vaio_diag diag = { 0 };
  struct vaio_config *cfg;
  struct vaio_host_filters *hf = NULL;
  char *head = header (), *yaml, *file, *text;
  int rc;

  ck_assert_int_ne (asprintf (&yaml, "%s%s", head, body), -1);
  file = tu_write_file (dir, "c.yaml", yaml, 0600);
  cfg = vaio_config_load (file, &diag);
  ck_assert_msg (cfg != NULL, "parse: %s", diag.n ? diag.msgs[0] : "?");
  if (with_inventory)
    hf = cu_host_filters (cfg);
  rc = vaio_validate (cfg, hf, &diag);
  ck_assert_int_eq (rc, diag.n ? -1 : 0);
  text = cu_diag_text (&diag, dir, "@TMP@");
  if (hf)
    cu_host_filters_free (hf, cfg->n_hosts);
  vaio_config_free (cfg);
  vaio_diag_free (&diag);
  free (head);
  free (yaml);
  free (file);
  return text;
}

/* A scratch directory with two images and the given secret files. */
static char *
scratch (void)
{
  char *dir = tu_mkdtemp ();

  free (tu_write_file (dir, "a.img", "", 0600));
  free (tu_write_file (dir, "b.img", "", 0600));
  for (const char *c = "cdefg"; *c; c++)
    {
      char name[8];
      snprintf (name, sizeof name, "%c.img", *c);
      free (tu_write_file (dir, name, "", 0600));
    }
  free (tu_write_file (dir, "key600", "passphrase\n", 0600));
  free (tu_write_file (dir, "key644", "passphrase\n", 0644));
  free (tu_write_file (dir, "key620", "passphrase\n", 0620));
  return dir;
}

static void
check (const char *body, const char *expect)
{
  char *dir = scratch (), *text = validate_text (dir, body, true);

  ck_assert_str_eq (text, expect);
  free (text);
  tu_rmrf (dir);
  free (dir);
}

/* One VM on host1 with disk d0 on a.img, under policy p. */
#define VM1                                                                    \
  "vms:\n"                                                                     \
  "  - name: vm1\n"                                                            \
  "    host: host1\n"                                                          \
  "    disks:\n"                                                               \
  "      - name: d0\n"                                                         \
  "        image: a.img\n"                                                     \
  "        policy: p\n"

START_TEST (valid_config_has_no_messages)
{
  check ("policies:\n"
         "  - name: p\n"
         "    encryption: { crypt-key-file: key600 }\n"
         "    replication:\n"
         "      repl-target: nbds://replica.example:10809/disk\n"
         "      repl-sync: yes\n"
         "      repl-queue: 64\n"
         "    caching:\n"
         "      cache-size: 64M\n"
         "      cache-mode: writethrough\n"
         "      cache-flush-interval: 30s\n" VM1 "      - name: d1\n"
         "        image: b.img\n"
         "        policy: p\n"
         "        port: 10809\n",
         "");
}
END_TEST

START_TEST (class_not_installed_on_host)
{
  check ("policies:\n"
         "  - name: p\n"
         "    sioc: {}\n"
         "    caching: { cache-size: 1M }\n" VM1,
         "@TMP@/c.yaml:11:5: policy 'p' uses class 'sioc', but host 'host1' "
         "has no sioc filter installed");
}
END_TEST

/* The same policy is fine on host1 and wrong on host2. */
START_TEST (class_installed_on_one_host_only)
{
  check ("policies:\n"
         "  - name: p\n"
         "    replication: { repl-target: 'nbd://r/x' }\n"
         "    caching: { cache-size: 1M }\n" VM1 "  - name: vm2\n"
         "    host: host2\n"
         "    disks:\n"
         "      - name: d0\n"
         "        image: b.img\n"
         "        policy: p\n",
         "@TMP@/c.yaml:11:5: policy 'p' uses class 'replication', but host "
         "'host2' has no replication filter installed");
}
END_TEST

START_TEST (unknown_parameter)
{
  check ("policies:\n"
         "  - name: p\n"
         "    caching: { cache-size: 1M, cache-colour: red }\n" VM1,
         "@TMP@/c.yaml:11:32: unknown parameter 'cache-colour' in policy 'p' "
         "caching (filter 'test-cache') (expected one of: cache-size, "
         "cache-mode, cache-flush-interval)");
}
END_TEST

START_TEST (bad_values_by_type)
{
  check ("policies:\n"
         "  - name: p\n"
         "    caching:\n"
         "      cache-size: 1.5G\n"
         "      cache-mode: writearound\n"
         "      cache-flush-interval: 30\n"
         "    replication:\n"
         "      repl-target: http://replica/x\n"
         "      repl-sync: maybe\n"
         "      repl-queue: -3\n" VM1,
         "@TMP@/c.yaml:16:7: bad NBD URI 'http://replica/x' for "
         "'repl-target' in policy 'p' replication (filter 'test-repl') "
         "(expected nbd://, nbds://, nbd+unix://, nbds+unix://, nbd+vsock:// "
         "or nbds+vsock://)\n"
         "@TMP@/c.yaml:17:7: bad boolean 'maybe' for 'repl-sync' in policy "
         "'p' replication (filter 'test-repl') (expected true/false, yes/no, "
         "on/off or 1/0)\n"
         "@TMP@/c.yaml:18:7: bad integer '-3' for 'repl-queue' in policy 'p' "
         "replication (filter 'test-repl') (expected a non-negative decimal "
         "integer)\n"
         "@TMP@/c.yaml:12:7: bad size '1.5G' for 'cache-size' in policy 'p' "
         "caching (filter 'test-cache') (expected digits and an optional B, "
         "S (512-byte sectors), K, M, G, T, P or E, e.g. 64M)\n"
         "@TMP@/c.yaml:13:7: bad value 'writearound' for 'cache-mode' in "
         "policy 'p' caching (filter 'test-cache') (expected one of: "
         "writeback, writethrough)\n"
         "@TMP@/c.yaml:14:7: bad duration '30' for 'cache-flush-interval' in "
         "policy 'p' caching (filter 'test-cache') (expected digits and a "
         "unit: ns, us, ms, s, m or h, e.g. 30ms)");
}
END_TEST

START_TEST (size_too_large)
{
  check ("policies:\n"
         "  - name: p\n"
         "    caching: { cache-size: 16E }\n" VM1,
         "@TMP@/c.yaml:11:16: size '16E' for 'cache-size' in policy 'p' "
         "caching (filter 'test-cache') is too large");
}
END_TEST

START_TEST (required_parameter_missing)
{
  check ("policies:\n"
         "  - name: p\n"
         "    caching: {}\n"
         "    replication:\n" VM1,
         "@TMP@/c.yaml:12:5: missing required parameter 'repl-target' in "
         "policy 'p' replication (filter 'test-repl')\n"
         "@TMP@/c.yaml:11:5: missing required parameter 'cache-size' in "
         "policy 'p' caching (filter 'test-cache')");
}
END_TEST

START_TEST (state_param_set_by_policy)
{
  check ("policies:\n"
         "  - name: p\n"
         "    caching: { cache-size: 1M, cache-state-dir: /tmp/mine }\n" VM1,
         "@TMP@/c.yaml:11:32: 'cache-state-dir' in policy 'p' caching "
         "(filter 'test-cache') is the filter's state directory, set by "
         "vaioctl for each disk; remove it from the policy");
}
END_TEST

START_TEST (secret_file_modes)
{
  check ("policies:\n"
         "  - name: p\n"
         "    encryption: { crypt-key-file: key644 }\n"
         "  - name: q\n"
         "    encryption: { crypt-key-file: key620 }\n"
         "  - name: r\n"
         "    encryption: { crypt-key-file: nokey }\n"
         "  - name: s\n"
         "    encryption: { crypt-key-file: . }\n" VM1
         "      - { name: d1, image: b.img, policy: q }\n"
         "  - name: vm2\n"
         "    host: host1\n"
         "    disks:\n"
         "      - { name: d0, image: a2.img, policy: r }\n"
         "      - { name: d1, image: b2.img, policy: s }\n",
         "@TMP@/c.yaml:11:19: secret file '@TMP@/key644' for "
         "'crypt-key-file' in policy 'p' encryption (filter 'test-crypt') "
         "has mode 0644: it is readable by others; chmod 600\n"
         "@TMP@/c.yaml:13:19: secret file '@TMP@/key620' for "
         "'crypt-key-file' in policy 'q' encryption (filter 'test-crypt') "
         "has mode 0620: it is accessible by others; chmod 600\n"
         "@TMP@/c.yaml:15:19: 'crypt-key-file' in policy 'r' encryption "
         "(filter 'test-crypt') must be the path of a file holding the "
         "secret, never the secret itself: No such file or directory (the "
         "value is not shown)\n"
         "@TMP@/c.yaml:17:19: secret file '@TMP@' for 'crypt-key-file' in "
         "policy 's' encryption (filter 'test-crypt') is not a regular file\n"
         "@TMP@/c.yaml:29:28: image '@TMP@/a2.img' for disk 'd0' of vm "
         "'vm2': No such file or directory\n"
         "@TMP@/c.yaml:30:28: image '@TMP@/b2.img' for disk 'd1' of vm "
         "'vm2': No such file or directory");
}
END_TEST

/* nbdkit's luks filter through its shipped manifest: the passphrase is a
 * secret file (given as FILE or as nbdkit's own +FILE spelling), and a
 * passphrase written inline is refused at its key without being echoed.
 */
START_TEST (luks_passphrase_inline_refused)
{
  struct vaio_diag diag = { 0 };
  struct vaio_config *cfg;
  struct vaio_host_filters *hf;
  char *dir = scratch (), *man = cu_shipped_manifest (dir, "nbdkit-luks");
  char *yaml, *file, *text;

  ck_assert_int_ne (asprintf (&yaml,
                              "cluster: lab\n"
                              "hosts:\n"
                              "  - name: host1\n"
                              "    state-dir: state\n"
                              "    filters: [%s]\n"
                              "policies:\n"
                              "  - name: p\n"
                              "    encryption: { passphrase: hunter2 }\n"
                              "  - name: q\n"
                              "    encryption: { passphrase: key600 }\n"
                              "  - name: r\n"
                              "    encryption: { passphrase: +key600 }\n"
                              "  - name: s\n"
                              "    encryption: { passphrase: +key644 }\n"
                              "  - name: t\n"
                              "    encryption: {}\n"
                              "vms:\n"
                              "  - name: vm1\n"
                              "    host: host1\n"
                              "    disks:\n"
                              "      - { name: d0, image: a.img, policy: p }\n"
                              "      - { name: d1, image: b.img, policy: q }\n"
                              "      - { name: d2, image: c.img, policy: r }\n"
                              "      - { name: d3, image: d.img, policy: s }\n"
                              "      - { name: d4, image: e.img, policy: t }\n",
                              man),
                    -1);
  free (tu_write_file (dir, "c.img", "", 0600));
  free (tu_write_file (dir, "d.img", "", 0600));
  free (tu_write_file (dir, "e.img", "", 0600));
  file = tu_write_file (dir, "c.yaml", yaml, 0600);
  cfg = vaio_config_load (file, &diag);
  ck_assert_msg (cfg != NULL, "parse: %s", diag.n ? diag.msgs[0] : "?");
  hf = cu_host_filters (cfg);
  ck_assert_int_eq (vaio_validate (cfg, hf, &diag), -1);
  text = cu_diag_text (&diag, dir, "@TMP@");
  ck_assert_str_eq (
      text, "@TMP@/c.yaml:8:19: 'passphrase' in policy 'p' encryption "
            "(filter 'nbdkit-luks') must be the path of a file holding the "
            "secret, never the secret itself: No such file or directory (the "
            "value is not shown)\n"
            "@TMP@/c.yaml:14:19: secret file '@TMP@/key644' for 'passphrase' "
            "in policy 's' encryption (filter 'nbdkit-luks') has mode 0644: "
            "it is readable by others; chmod 600\n"
            "@TMP@/c.yaml:16:5: missing required parameter 'passphrase' in "
            "policy 't' encryption (filter 'nbdkit-luks')");
  ck_assert_ptr_null (strstr (text, "hunter2"));
  free (text);
  cu_host_filters_free (hf, cfg->n_hosts);
  vaio_config_free (cfg);
  vaio_diag_free (&diag);
  free (yaml);
  free (file);
  free (man);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

START_TEST (image_missing_or_not_a_file)
{
  check ("policies:\n"
         "  - name: p\n"
         "    caching: { cache-size: 1M }\n"
         "vms:\n"
         "  - name: vm1\n"
         "    host: host1\n"
         "    disks:\n"
         "      - { name: d0, image: missing.img, policy: p }\n"
         "      - { name: d1, image: /, policy: p }\n"
         "      - { name: d2, image: /dev/null, policy: p }\n",
         "@TMP@/c.yaml:16:28: image '@TMP@/missing.img' for disk 'd0' of vm "
         "'vm1': No such file or directory\n"
         "@TMP@/c.yaml:17:28: image '/' for disk 'd1' of vm 'vm1' is not a "
         "regular file or block device\n"
         "@TMP@/c.yaml:18:28: image '/dev/null' for disk 'd2' of vm 'vm1' is "
         "not a regular file or block device");
}
END_TEST

START_TEST (disks_share_image_socket_port)
{
  check ("policies:\n"
         "  - name: p\n"
         "    caching: { cache-size: 1M }\n"
         "vms:\n"
         "  - name: vm1\n"
         "    host: host1\n"
         "    disks:\n"
         "      - { name: d0, image: a.img, policy: p, socket: s.sock }\n"
         "      - { name: d1, image: ./a.img, policy: p, socket: s.sock }\n"
         "      - { name: d2, image: b.img, policy: p, port: 10809 }\n"
         "  - name: vm2\n"
         "    host: host2\n"
         "    disks:\n"
         "      - { name: d0, image: b.img, policy: p, port: 10809,\n"
         "          address: 0.0.0.0 }\n",
         "@TMP@/c.yaml:17:28: disk 'd1' of vm 'vm1' uses image '@TMP@/a.img', "
         "already used by disk 'd0' of vm 'vm1' (line 16)\n"
         "@TMP@/c.yaml:17:56: disk 'd1' of vm 'vm1' uses socket "
         "'@TMP@/s.sock', already used by disk 'd0' of vm 'vm1' (line 16)\n"
         "@TMP@/c.yaml:22:28: disk 'd0' of vm 'vm2' uses image '@TMP@/b.img', "
         "already used by disk 'd2' of vm 'vm1' (line 18)\n"
         "@TMP@/c.yaml:22:52: disk 'd0' of vm 'vm2' uses TCP endpoint "
         "'0.0.0.0:10809', already used by disk 'd2' of vm 'vm1' (line 18)");
}
END_TEST

START_TEST (hosts_share_state_dir)
{
  static const char *const spellings[]
      = { "state/host2", "./state/../state//host2/" };
  char *m = tu_fixture ("manifests"), *body;

  /* Another spelling of the same directory is the same directory. */
  for (size_t i = 0; i < 2; i++)
    {
      ck_assert_int_ne (asprintf (&body,
                                  "  - name: host3\n"
                                  "    state-dir: %s\n"
                                  "    filters: [%s/sioc.yaml]\n",
                                  spellings[i], m),
                        -1);
      check (body, "@TMP@/c.yaml:9:5: host 'host3' uses state-dir "
                   "'@TMP@/state/host2', already used by host 'host2' "
                   "(line 6)");
      free (body);
    }
  free (m);
}
END_TEST

START_TEST (unknown_host_and_policy)
{
  check ("policies:\n"
         "  - name: p\n"
         "    caching: { cache-size: 1M }\n"
         "vms:\n"
         "  - name: vm1\n"
         "    host: host7\n"
         "    disks:\n"
         "      - { name: d0, image: a.img, policy: gold }\n",
         "@TMP@/c.yaml:14:11: unknown host 'host7' for 'host' in vm 'vm1'\n"
         "@TMP@/c.yaml:16:43: unknown policy 'gold' for 'policy' in disk 'd0' "
         "of vm 'vm1'");
}
END_TEST

/* A policy used by two disks on one host is reported once per problem. */
START_TEST (each_problem_reported_once)
{
  check ("policies:\n"
         "  - name: p\n"
         "    caching: { cache-size: lots }\n" VM1
         "      - { name: d1, image: b.img, policy: p }\n",
         "@TMP@/c.yaml:11:16: bad size 'lots' for 'cache-size' in policy 'p' "
         "caching (filter 'test-cache') (expected digits and an optional B, "
         "S (512-byte sectors), K, M, G, T, P or E, e.g. 64M)");
}
END_TEST

/* Without an inventory the filter rules are skipped, the rest checked. */
START_TEST (without_inventory)
{
  char *dir = scratch ();
  char *text = validate_text (dir,
                              "policies:\n"
                              "  - name: p\n"
                              "    sioc: { bogus: 1 }\n"
                              "vms:\n"
                              "  - name: vm1\n"
                              "    host: host1\n"
                              "    disks:\n"
                              "      - { name: d0, image: x.img, policy: p }\n",
                              false);

  ck_assert_str_eq (text, "@TMP@/c.yaml:16:28: image '@TMP@/x.img' for disk "
                          "'d0' of vm 'vm1': No such file or directory");
  free (text);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

/* A socket path naming another disk's image (or any file) would be
 * removed as a stale socket: refused, naming both disks.
 */
START_TEST (socket_names_an_image)
{
  check ("policies:\n"
         "  - name: p\n"
         "    caching: { cache-size: 1M }\n" VM1 "  - name: vm2\n"
         "    host: host1\n"
         "    disks:\n"
         "      - { name: d0, image: b.img, policy: p, socket: ./a.img }\n",
         "@TMP@/c.yaml:22:54: socket '@TMP@/a.img' of disk 'd0' of vm 'vm2' "
         "exists and is not a socket: vaioctl never replaces or removes "
         "anything but a socket there\n"
         "@TMP@/c.yaml:22:54: socket '@TMP@/a.img' of disk 'd0' of vm 'vm2' "
         "is the image of disk 'd0' of vm 'vm1' (line 16)");
}
END_TEST

/* A symlink to the image is the image. */
START_TEST (socket_is_symlink_to_image)
{
  char *dir = scratch (), *text, *link;

  ck_assert_int_ne (asprintf (&link, "%s/img.sock", dir), -1);
  ck_assert_int_eq (symlink ("b.img", link), 0);
  text = validate_text (dir,
                        "policies:\n"
                        "  - name: p\n"
                        "    caching: { cache-size: 1M }\n" VM1
                        "      - { name: d1, image: b.img, policy: p, socket: "
                        "img.sock }\n",
                        true);
  ck_assert_str_eq (
      text, "@TMP@/c.yaml:19:54: socket '@TMP@/img.sock' of disk 'd1' of vm "
            "'vm1' exists and is not a socket: vaioctl never replaces or "
            "removes anything but a socket there\n"
            "@TMP@/c.yaml:19:54: socket '@TMP@/img.sock' of disk 'd1' of vm "
            "'vm1' is the image of disk 'd1' of vm 'vm1' (line 19)");
  free (link);
  free (text);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

/* A socket belongs in its own VM's directory or outside the host's
 * state: never in a disk's state dir, another VM's directory or among
 * the host's own files; and two VMs never share a socket directory.
 */
START_TEST (socket_places_refused)
{
  check ("policies:\n"
         "  - name: p\n"
         "    caching: { cache-size: 1M }\n"
         "vms:\n"
         "  - name: vm1\n"
         "    host: host1\n"
         "    disks:\n"
         "      - { name: d0, image: a.img, policy: p,\n"
         "          socket: state/host1/vms/vm1/d1/x.sock }\n"
         "      - { name: d1, image: b.img, policy: p,\n"
         "          socket: state/host1/vms/vm3/x.sock }\n"
         "      - { name: d2, image: c.img, policy: p,\n"
         "          socket: state/host2/installed.sock }\n"
         "      - { name: d3, image: d.img, policy: p, socket: socks/a.sock }\n"
         "      - { name: d4, image: e.img, policy: p, socket: vm1/d4.sock }\n"
         "  - name: vm2\n"
         "    host: host1\n"
         "    disks:\n"
         "      - { name: d0, image: f.img, policy: p, socket: socks/b.sock }\n"
         "      - { name: d1, image: g.img, policy: p,\n"
         "          socket: state/host1/vms/vm2/own.sock }\n",
         "@TMP@/c.yaml:17:19: socket "
         "'@TMP@/state/host1/vms/vm1/d1/x.sock' of disk 'd0' of vm 'vm1' is "
         "inside the state directory '@TMP@/state/host1/vms/vm1/d1' of disk "
         "'d1' of vm 'vm1' (line 18)\n"
         "@TMP@/c.yaml:19:19: socket '@TMP@/state/host1/vms/vm3/x.sock' of "
         "disk 'd1' of vm 'vm1' is inside the directory of vm 'vm3' "
         "(@TMP@/state/host1/vms/vm3): a VM's directory holds its own disks "
         "only\n"
         "@TMP@/c.yaml:21:19: socket '@TMP@/state/host2/installed.sock' of "
         "disk 'd2' of vm 'vm1' is inside the state directory "
         "'@TMP@/state/host2' of host 'host2' but outside the vm's own "
         "directory '@TMP@/state/host1/vms/vm1'\n"
         "@TMP@/c.yaml:27:54: socket '@TMP@/socks/b.sock' of disk 'd0' of vm "
         "'vm2' is in directory '@TMP@/socks' with the socket of disk 'd3' "
         "of vm 'vm1' (line 22): each VM's sockets need a directory of their "
         "own");
}
END_TEST

/* sun_path holds 107 bytes: the socket, <socket>.next (apply) and the
 * disk's pause.sock must fit, each reported at the key that sets it.
 */
START_TEST (socket_paths_too_long)
{
  char body[2048], longdir[120], *expect, *x97, *x96;

  memset (longdir, 'x', 100);
  longdir[100] = '\0';
  x97 = strndup (longdir, 97);
  x96 = strndup (longdir, 96);
  /* host3's state-dir is 101 bytes: d0's default socket and its pause
   * socket cannot fit; on host2, a 102-byte socket fits with its .next.
   */
  snprintf (body, sizeof body,
            "  - name: host3\n"
            "    state-dir: /%s\n"
            "policies:\n"
            "  - name: p\n"
            "vms:\n"
            "  - name: vm1\n"
            "    host: host2\n"
            "    disks:\n"
            "      - { name: d0, image: a.img, policy: p,\n"
            "          socket: /%s.sock }\n"
            "      - { name: d1, image: b.img, policy: p,\n"
            "          socket: /%s.sock }\n"
            "  - name: vm2\n"
            "    host: host3\n"
            "    disks:\n"
            "      - { name: d0, image: c.img, policy: p }\n",
            longdir, x97, x96);
  ck_assert_int_ne (
      asprintf (
          &expect,
          "@TMP@/c.yaml:18:19: socket '/%s.sock' of disk 'd0' of vm 'vm1' is "
          "too long for a unix socket: 103 bytes, at most 102 (apply binds "
          "'<socket>.next', 107 bytes at most); use a shorter 'socket'\n"
          "@TMP@/c.yaml:10:16: pause socket '/%s/vms/vm2/d0/pause.sock' of "
          "disk 'd0' of vm 'vm2' is too long for a unix socket: 123 bytes, "
          "at most 107; use a shorter 'state-dir'\n"
          "@TMP@/c.yaml:10:16: socket '/%s/vms/vm2/d0.sock' of disk 'd0' of "
          "vm 'vm2' is too long for a unix socket: 117 bytes, at most 102 "
          "(apply binds '<socket>.next', 107 bytes at most); use a shorter "
          "'state-dir' or set 'socket'",
          x97, longdir, longdir),
      -1);
  check (body, expect);
  free (expect);
  free (x97);
  free (x96);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("validate");
  TCase *tc = tcase_create ("validate");
  SRunner *sr;
  int failed;

  tcase_add_test (tc, valid_config_has_no_messages);
  tcase_add_test (tc, class_not_installed_on_host);
  tcase_add_test (tc, class_installed_on_one_host_only);
  tcase_add_test (tc, unknown_parameter);
  tcase_add_test (tc, bad_values_by_type);
  tcase_add_test (tc, size_too_large);
  tcase_add_test (tc, required_parameter_missing);
  tcase_add_test (tc, state_param_set_by_policy);
  tcase_add_test (tc, secret_file_modes);
  tcase_add_test (tc, luks_passphrase_inline_refused);
  tcase_add_test (tc, image_missing_or_not_a_file);
  tcase_add_test (tc, disks_share_image_socket_port);
  tcase_add_test (tc, hosts_share_state_dir);
  tcase_add_test (tc, socket_names_an_image);
  tcase_add_test (tc, socket_is_symlink_to_image);
  tcase_add_test (tc, socket_places_refused);
  tcase_add_test (tc, socket_paths_too_long);
  tcase_add_test (tc, unknown_host_and_policy);
  tcase_add_test (tc, each_problem_reported_once);
  tcase_add_test (tc, without_inventory);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
