/* vaioctl: the vaio-nbd chain manager.
 *
 * A pipeline: parse (config.c) → validate (validate.c) → plan (plan.c) →
 * supervise (supervise.c), with views over the result (status.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "inventory.h"
#include "plan.h"
#include "status.h"
#include "supervise.h"

static const char usage_text[]
    = "NAME\n"
      "    vaioctl - manage VAIO-style I/O filter chains for NBD-served VM "
      "disks\n"
      "\n"
      "SYNOPSIS\n"
      "    vaioctl validate FILE\n"
      "    vaioctl plan     FILE [--vm VM]\n"
      "    vaioctl up       FILE [--vm VM] [--timeout SECS]\n"
      "    vaioctl down     FILE [--vm VM] [--timeout SECS]\n"
      "    vaioctl apply    FILE [--dry-run] [--force] "
      "[--convert-encryption]\n"
      "                     [--allow-encryption-change]\n"
      "    vaioctl status   FILE [--view cluster|host|vm] [--json]\n"
      "    vaioctl top      FILE [--iterations N] [--interval MS] [--json]\n"
      "    vaioctl filter install MANIFEST --host HOST -c FILE\n"
      "    vaioctl filter uninstall NAME   --host HOST -c FILE\n"
      "    vaioctl filter list -c FILE [--json]\n"
      "    vaioctl host maintenance HOST on|off [--stop-disks] -c FILE\n"
      "\n"
      "DESCRIPTION\n"
      "    vaioctl reads a cluster config (YAML: hosts, storage policies, VMs "
      "and\n"
      "    their disks) and serves every VM disk through its own nbdkit "
      "process,\n"
      "    whose filter chain is the disk's policy put in the canonical VAIO "
      "class\n"
      "    order, guest to disk:\n"
      "\n"
      "        encryption, replication, caching, sioc          (default)\n"
      "        replication, caching, sioc, encryption          (policy sets\n"
      "                                                         "
      "allow-cleartext-filters)\n"
      "\n"
      "    A host has at most one filter per class installed; a disk gets at "
      "most\n"
      "    one filter per class.  Each VM has a private directory (mode 0700) "
      "under\n"
      "    its host's state-dir holding its disks' sockets, pidfiles, logs and "
      "the\n"
      "    filters' state; one VM's chain never sees another VM's state.\n"
      "\n"
      "COMMANDS\n"
      "    validate   Check the config: schema (every error names "
      "file:line:column\n"
      "               and key), filter manifests and their sha256, the VAIO "
      "rules,\n"
      "               policy settings against each filter's declared "
      "parameters,\n"
      "               images exist, no shared image/socket/port/state.\n"
      "    plan       Print, per disk, the exact nbdkit command line `up` "
      "runs,\n"
      "               after a mkdir of the private directories it needs.  It "
      "can be\n"
      "               pasted into a shell.  Secrets appear only as file "
      "paths.\n"
      "    up         Start every (or one VM's) disk not already running and "
      "wait\n"
      "               until each serves.  Refuses disks on hosts in "
      "maintenance.\n"
      "    down       Flush each disk over a side connection (so write-back\n"
      "               filters write back), then SIGTERM: nbdkit finishes\n"
      "               in-flight requests; after --timeout (default 30 s) "
      "SIGKILL.\n"
      "    apply      Make the running disks match FILE, disk by disk: start\n"
      "               disks not running, leave unchanged disks alone (same "
      "pid),\n"
      "               and swap the chain of changed disks without a "
      "guest-visible\n"
      "               error: new requests are held (nbdkit pause filter), "
      "in-flight\n"
      "               ones drain, a flush makes filter state durable (and a "
      "cache\n"
      "               being removed is destaged), the old nbdkit is dropped "
      "and the\n"
      "               new chain serves on the same socket; QEMU reconnects\n"
      "               (reconnect-delay) and replays.  Prints how long I/O was "
      "held\n"
      "               per swapped disk.  A cache being removed destages, and "
      "a replica\n"
      "               being dropped catches up, before the pause, with I/O "
      "running.\n"
      "               Unsafe changes are refused before anything changes: "
      "adding or\n"
      "               removing encryption on a disk that holds data (unless\n"
      "               --convert-encryption), adding vaio-crypt to an image "
      "without a\n"
      "               LUKS header (unless --convert-encryption), removing\n"
      "               replication with an unshipped journal, a drain that "
      "does not\n"
      "               finish within --timeout, a changed image, socket or "
      "port\n"
      "               (down + up), a host in maintenance.  Replication or "
      "cache state\n"
      "               a chain without that class left stale is set aside at "
      "start\n"
      "               (full sync, empty cache); a cache holding dirty data is "
      "never\n"
      "               bypassed or discarded (up does the same).\n"
      "               A change of live parameters only (live: true in the\n"
      "               manifest) goes to the filter's settings file with no\n"
      "               restart; a value the filter refuses fails apply and the\n"
      "               old settings stay in force.\n"
      "    status     The vSphere client's three views: cluster (filters on "
      "each\n"
      "               host), host (Name, Vendor, Version, Type), VM (per "
      "disk:\n"
      "               policy, chain, pid, state, compliance, live filter "
      "stats).\n"
      "               A replicated disk adds a line: replica connected or "
      "not,\n"
      "               lag now/p50/p99, RPO (OVER RPO past it), resync "
      "progress.\n"
      "               A running disk's chain is the one it runs (its running\n"
      "               record, checked against the process's --filter= "
      "order);\n"
      "               when the policy now plans another, that one is shown "
      "too\n"
      "               (planned_chain) and the disk is out of compliance.\n"
      "               Exits 1 when a disk is dead or out of compliance.\n"
      "    top        Per-disk IOPS, MiB/s, p99 latency and each filter's "
      "gauges,\n"
      "               refreshed every --interval ms (default 1000); rates are "
      "over\n"
      "               the time measured between samples.  On a terminal each\n"
      "               refresh redraws the screen; into a pipe the tables "
      "follow\n"
      "               one another.  A disk that cannot be planned is shown "
      "with\n"
      "               the reason.\n"
      "    filter install\n"
      "               Install a filter package from its manifest on a host: "
      "the\n"
      "               .so must match the manifest's sha256, and a second "
      "filter of\n"
      "               an installed class is refused.  Re-installing a filter "
      "of the\n"
      "               same name upgrades it, refused while running disks use "
      "it\n"
      "               unless the host is in maintenance mode.\n"
      "    filter uninstall\n"
      "               Remove an installed filter (same in-use rule).\n"
      "    filter list\n"
      "               Filters on every host, with where they came from.\n"
      "    host maintenance\n"
      "               Enter or leave maintenance mode.  Entering is refused "
      "while\n"
      "               disks run on the host unless --stop-disks stops them "
      "first.\n"
      "               Disks still running under the host's state-dir that "
      "the\n"
      "               config no longer names count as running (and as "
      "users of\n"
      "               their filters); `apply` stops them.\n"
      "\n"
      "OPTIONS\n"
      "    -c, --config FILE   the cluster config (also the first operand of\n"
      "                        validate, plan, up, down, apply, status, top)\n"
      "    --vm VM             act on one VM only\n"
      "    --host HOST         the host for filter install/uninstall\n"
      "    --json              machine-readable output (status, top, filter "
      "list)\n"
      "    --view VIEW         cluster, host or vm (status; default all "
      "three)\n"
      "    --timeout SECS      up: wait for serving (default 10); down: wait "
      "for\n"
      "                        exit before SIGKILL (default 30); apply: "
      "each\n"
      "                        drain and start (default 30)\n"
      "    --iterations N      top: samples to print (default: until "
      "interrupted)\n"
      "    --interval MS       top: sampling interval (default 1000)\n"
      "    --stop-disks        host maintenance on: stop the host's disks "
      "first\n"
      "    --dry-run           apply: print what would change (with any image\n"
      "                        conversion and the bytes it copies), change "
      "nothing\n"
      "    --force             apply: remove replication even with an "
      "unshipped\n"
      "                        journal (the replica misses those writes)\n"
      "    --convert-encryption\n"
      "                        apply: add or remove vaio-crypt on a disk by "
      "converting\n"
      "                        its image.  Checked first, before anything "
      "stops: the\n"
      "                        key (the new policy's to add; to remove, the "
      "running\n"
      "                        chain's, which must open the image; files or a "
      "key\n"
      "                        store, not an fd), and free space beside the "
      "image for\n"
      "                        the new one (its full size + 1/256).  Then, "
      "with the\n"
      "                        disk held (paused, flushed, a cache destaged, "
      "the old\n"
      "                        nbdkit stopped), nbdcopy copies every "
      "guest-visible\n"
      "                        byte through vaio-crypt into IMAGE.converting "
      "(adding:\n"
      "                        formatted LUKS1 beforehand, payload = the old "
      "size, so\n"
      "                        the guest sees the same size), which is "
      "fsynced and\n"
      "                        renamed over IMAGE; the original is kept as\n"
      "                        IMAGE.pre-convert until the new chain serves.  "
      "Progress\n"
      "                        and the held time are printed; I/O is held "
      "for the\n"
      "                        whole copy (QEMU's reconnect-delay must cover "
      "it).  A\n"
      "                        cache is emptied, and a replication filter "
      "behind\n"
      "                        encryption has its state moved aside\n"
      "                        (replication.stale-TIME): a full resync.  On "
      "any\n"
      "                        failure IMAGE.converting is removed, the image "
      "is\n"
      "                        untouched and the old chain serves again.  "
      "Other\n"
      "                        encryption filters are refused.\n"
      "    --allow-encryption-change\n"
      "                        apply: add/remove/move encryption on a disk "
      "holding\n"
      "                        data without converting it (only for scratch "
      "disks;\n"
      "                        adding still needs a LUKS header)\n"
      "    -h, --help          this text\n"
      "\n"
      "FILES\n"
      "    <state-dir>/installed/NAME.yaml        filters installed with "
      "vaioctl\n"
      "    <state-dir>/maintenance                present while in "
      "maintenance\n"
      "    <state-dir>/vms/VM/DISK.sock           a disk's NBD socket\n"
      "    <state-dir>/vms/VM/DISK/               nbdkit.pid, nbdkit.log, "
      "running,\n"
      "                                           chain-classes (what the "
      "last\n"
      "                                           chain started had), and "
      "CLASS/\n"
      "                                           per filter (stats, "
      "state)\n"
      "    IMAGE.converting, IMAGE.pre-convert    the new image and the "
      "original,\n"
      "                                           during apply "
      "--convert-encryption\n"
      "\n"
      "EXIT STATUS\n"
      "    0 success; 1 the config or an action failed (messages on stderr);\n"
      "    2 usage error.\n"
      "\n"
      "EXAMPLES\n"
      "    vaioctl validate configs/demo.yaml\n"
      "    vaioctl up configs/demo.yaml && vaioctl status configs/demo.yaml\n"
      "    qemu-system-x86_64 ... -blockdev "
      "driver=nbd,node-name=d0,server.type=unix,\\\n"
      "        server.path=STATE/vms/vm1/disk0.sock,reconnect-delay=30 \\\n"
      "        -device virtio-blk-pci,drive=d0\n"
      "    vaioctl filter install build/nbdkit-filters/caching/vaio-cache.yaml "
      "\\\n"
      "        --host host1 -c configs/demo.yaml\n"
      "\n"
      "SEE ALSO\n"
      "    nbdkit(1), nbdkit-filter(3); this text as a manual page: man "
      "vaioctl\n";

struct options
{
  const char *config, *vm, *host;
  bool json, stop_disks, dry_run, force, allow_enc, convert_enc;
  enum vaio_view view;
  int timeout_s; /* -1: command default */
  unsigned iterations, interval_ms;
};

/* Everything loaded for a command that needs the cluster. */
struct cluster
{
  struct vaio_config *cfg;
  struct vaio_host_filters *hf;
};

static void
cluster_free (struct cluster *c)
{
  if (c->cfg)
    {
      vaio_host_filters_free (c->hf, c->cfg->n_hosts);
      vaio_config_free (c->cfg);
    }
  free (c->hf);
}

/* parse → load installed filters → validate, reporting every error of
 * the config in one run (an inventory error does not hide the others).
 * strict: any error fails the command, for the commands that start or
 * plan chains.  Otherwise a failed inventory (a .so that no longer
 * matches its manifest, a manifest gone) is reported and the command
 * goes on: down, status, host and filter work from the running records
 * and paths, and are how such a host is repaired.  The table then still
 * holds the manifests whose .so failed its check, for status to show.
 */
static int
cluster_load (const char *file, struct cluster *c, bool validate, bool strict)
{
  struct vaio_diag diag = { 0 };
  int r = 0;

  memset (c, 0, sizeof *c);
  c->cfg = vaio_config_load (file, &diag);
  if (c->cfg == NULL)
    r = -1;
  else
    {
      c->hf = calloc (c->cfg->n_hosts + 1, sizeof *c->hf);
      if (c->hf == NULL)
        r = -1;
      else if (vaio_host_filters_load (c->cfg, c->hf, &diag) == -1 && strict)
        r = -1;
      if (c->hf && validate && vaio_validate (c->cfg, c->hf, &diag) == -1)
        r = -1;
    }
  vaio_diag_print (&diag, stderr);
  vaio_diag_free (&diag);
  if (r == -1)
    cluster_free (c);
  return r;
}

static const struct vaio_host *
need_host (const struct cluster *c, const char *name)
{
  const struct vaio_host *h = name ? vaio_config_host (c->cfg, name) : NULL;

  if (name == NULL)
    fprintf (stderr, "vaioctl: --host HOST is required\n");
  else if (h == NULL)
    fprintf (stderr, "vaioctl: %s: no host named '%s'\n", c->cfg->file, name);
  return h;
}

static int down_one (const struct cluster *c, const struct options *o,
                     const struct vaio_plan_disk *p);

/* Call fn for every disk (of --vm, when given) with its plan; down_one
 * gets the disk's paths only: stopping needs no filter, so a filter that
 * fails its integrity check or is gone never keeps a disk running.
 */
static int
for_each_disk (const struct cluster *c, const struct options *o,
               int (*fn) (const struct cluster *, const struct options *,
                          const struct vaio_plan_disk *))
{
  int r = 0;
  bool found = o->vm == NULL;

  for (size_t v = 0; v < c->cfg->n_vms; v++)
    {
      const struct vaio_vm *vm = &c->cfg->vms[v];
      if (o->vm && strcmp (o->vm, vm->name) != 0)
        continue;
      found = true;
      for (size_t i = 0; i < vm->n_disks; i++)
        {
          struct vaio_plan_disk p;
          struct vaio_diag diag = { 0 };
          if (fn == down_one
                  ? vaio_disk_paths (c->cfg, vm, &vm->disks[i], &p, &diag) == -1
                  : vaio_plan_disk (c->cfg, c->hf, vm, &vm->disks[i], &p, &diag)
                        == -1)
            r = -1;
          else
            {
              if (fn (c, o, &p) == -1)
                r = -1;
              vaio_plan_disk_free (&p);
            }
          vaio_diag_print (&diag, stderr);
          vaio_diag_free (&diag);
        }
    }
  if (!found)
    {
      fprintf (stderr, "vaioctl: %s: no VM named '%s'\n", c->cfg->file, o->vm);
      return -1;
    }
  return r;
}

static int
plan_one (const struct cluster *c, const struct options *o,
          const struct vaio_plan_disk *p)
{
  char *dirs = vaio_plan_mkdir_line (p), *line = vaio_plan_shell_line (p);
  int r = dirs && line ? 0 : -1;

  printf ("# %s/%s (host %s, policy %s)\n%s &&\n%s\n", p->vm->name,
          p->disk->name, p->host->name, p->policy->name, dirs ? dirs : "",
          line ? line : "");
  free (dirs);
  free (line);
  return r;
}

static int
up_one (const struct cluster *c, const struct options *o,
        const struct vaio_plan_disk *p)
{
  struct vaio_diag diag = { 0 };
  pid_t pid = vaio_disk_pid (p->pidfile);
  char *uri;
  int r = 0;

  if (pid > 0)
    {
      printf ("%s/%s: already running (pid %ld)\n", p->vm->name, p->disk->name,
              (long)pid);
      return 0;
    }
  if (vaio_host_in_maintenance (p->host))
    {
      fprintf (stderr,
               "vaioctl: %s/%s: host '%s' is in maintenance mode; not "
               "starting\n",
               p->vm->name, p->disk->name, p->host->name);
      return -1;
    }
  pid = vaio_disk_start (p, (o->timeout_s >= 0 ? o->timeout_s : 10) * 1000,
                         &diag);
  vaio_diag_print (&diag, stderr);
  vaio_diag_free (&diag);
  if (pid < 0)
    return -1;
  uri = vaio_plan_uri (p);
  printf ("%s/%s: serving %s (pid %ld)\n", p->vm->name, p->disk->name,
          uri ? uri : "", (long)pid);
  free (uri);
  return r;
}

static int
down_one (const struct cluster *c, const struct options *o,
          const struct vaio_plan_disk *p)
{
  struct vaio_diag diag = { 0 };
  pid_t pid = vaio_disk_pid (p->pidfile);
  int r;

  r = vaio_disk_stop (p, (o->timeout_s >= 0 ? o->timeout_s : 30) * 1000, &diag);
  vaio_diag_print (&diag, stderr);
  vaio_diag_free (&diag);
  if (pid > 0 && r >= 0)
    printf ("%s/%s: stopped (pid %ld)%s\n", p->vm->name, p->disk->name,
            (long)pid, r == 0 ? ", flushed" : ", NOT flushed");
  return r == 0 ? 0 : -1;
}

static int
cmd_filter (struct cluster *c, const struct options *o, int argc, char **argv)
{
  struct vaio_diag diag = { 0 };
  const struct vaio_host *h;
  int r;

  if (argc >= 1 && strcmp (argv[0], "list") == 0)
    return vaio_status (c->cfg, c->hf, VAIO_VIEW_HOST, o->json, stdout) == -1;
  if (argc != 2
      || (strcmp (argv[0], "install") != 0
          && strcmp (argv[0], "uninstall") != 0))
    {
      fprintf (stderr, "vaioctl: usage: vaioctl filter install MANIFEST | "
                       "uninstall NAME --host HOST -c FILE | list -c FILE\n");
      return 2;
    }
  if ((h = need_host (c, o->host)) == NULL)
    return 1;
  if (strcmp (argv[0], "install") == 0)
    r = vaio_filter_install (c->cfg, h, argv[1], &diag);
  else
    r = vaio_filter_uninstall (c->cfg, h, argv[1], &diag);
  vaio_diag_print (&diag, stderr);
  vaio_diag_free (&diag);
  if (r == 0)
    printf ("host %s: %s %s\n", h->name,
            strcmp (argv[0], "install") == 0 ? "installed" : "uninstalled",
            argv[1]);
  return r == 0 ? 0 : 1;
}

static void
free_strv (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

static int
cmd_maintenance (struct cluster *c, const struct options *o, int argc,
                 char **argv)
{
  const struct vaio_host *h;
  char **running;
  bool on;

  if (argc != 3 || strcmp (argv[0], "maintenance") != 0
      || (strcmp (argv[2], "on") != 0 && strcmp (argv[2], "off") != 0))
    {
      fprintf (stderr, "vaioctl: usage: vaioctl host maintenance HOST on|off "
                       "[--stop-disks] -c FILE\n");
      return 2;
    }
  if ((h = need_host (c, argv[1])) == NULL)
    return 1;
  on = strcmp (argv[2], "on") == 0;
  running = vaio_host_running_disks (c->cfg, h, VAIO_CLASS_COUNT);
  if (on && running && running[0])
    {
      if (!o->stop_disks)
        {
          fprintf (stderr,
                   "vaioctl: host '%s': refusing maintenance mode: disk %s%s "
                   "is running (use --stop-disks to stop them first)\n",
                   h->name, running[0], running[1] ? " and others" : "");
          free_strv (running);
          return 1;
        }
      for (size_t v = 0; v < c->cfg->n_vms; v++)
        if (strcmp (c->cfg->vms[v].host, h->name) == 0)
          {
            struct options vo = *o;
            vo.vm = c->cfg->vms[v].name;
            if (for_each_disk (c, &vo, down_one) == -1)
              return 1;
          }
      /* Disks the config no longer names are not stopped from here
       * (only their default paths are known): apply stops them.
       */
      free_strv (running);
      running = vaio_host_running_disks (c->cfg, h, VAIO_CLASS_COUNT);
      if (running && running[0])
        {
          fprintf (stderr,
                   "vaioctl: host '%s': refusing maintenance mode: disk %s%s "
                   "is still running (vaioctl apply stops disks no longer "
                   "in the config)\n",
                   h->name, running[0], running[1] ? " and others" : "");
          free_strv (running);
          return 1;
        }
    }
  free_strv (running);
  if (vaio_host_set_maintenance (h, on) == -1)
    {
      fprintf (stderr, "vaioctl: host '%s': %s: %m\n", h->name, h->state_dir);
      return 1;
    }
  printf ("host %s: maintenance mode %s\n", h->name, on ? "on" : "off");
  return 0;
}

static int
parse_view (const char *s, enum vaio_view *v)
{
  if (strcmp (s, "cluster") == 0)
    *v = VAIO_VIEW_CLUSTER;
  else if (strcmp (s, "host") == 0)
    *v = VAIO_VIEW_HOST;
  else if (strcmp (s, "vm") == 0)
    *v = VAIO_VIEW_VM;
  else
    return -1;
  return 0;
}

static int
parse_uint (const char *s, const char *opt, unsigned *out)
{
  char *end;
  unsigned long v = strtoul (s, &end, 10);

  if (*s == '\0' || *end != '\0' || v > 1000000)
    {
      fprintf (stderr, "vaioctl: %s: '%s' is not a number\n", opt, s);
      return -1;
    }
  *out = (unsigned)v;
  return 0;
}

static int
parse_options (int argc, char **argv, struct options *o)
{
  enum
  {
    OPT_VM = 256,
    OPT_HOST,
    OPT_JSON,
    OPT_VIEW,
    OPT_TIMEOUT,
    OPT_ITER,
    OPT_INTERVAL,
    OPT_STOP,
    OPT_DRY,
    OPT_FORCE,
    OPT_ALLOW_ENC,
    OPT_CONVERT_ENC
  };
  static const struct option longopts[] = {
    { "config", required_argument, NULL, 'c' },
    { "vm", required_argument, NULL, OPT_VM },
    { "host", required_argument, NULL, OPT_HOST },
    { "json", no_argument, NULL, OPT_JSON },
    { "view", required_argument, NULL, OPT_VIEW },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "iterations", required_argument, NULL, OPT_ITER },
    { "interval", required_argument, NULL, OPT_INTERVAL },
    { "stop-disks", no_argument, NULL, OPT_STOP },
    { "dry-run", no_argument, NULL, OPT_DRY },
    { "force", no_argument, NULL, OPT_FORCE },
    { "allow-encryption-change", no_argument, NULL, OPT_ALLOW_ENC },
    { "convert-encryption", no_argument, NULL, OPT_CONVERT_ENC },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  unsigned u;
  int c;

  while ((c = getopt_long (argc, argv, "c:h", longopts, NULL)) != -1)
    switch (c)
      {
      case 'c':
        o->config = optarg;
        break;
      case OPT_VM:
        o->vm = optarg;
        break;
      case OPT_HOST:
        o->host = optarg;
        break;
      case OPT_JSON:
        o->json = true;
        break;
      case OPT_STOP:
        o->stop_disks = true;
        break;
      case OPT_DRY:
        o->dry_run = true;
        break;
      case OPT_FORCE:
        o->force = true;
        break;
      case OPT_ALLOW_ENC:
        o->allow_enc = true;
        break;
      case OPT_CONVERT_ENC:
        o->convert_enc = true;
        break;
      case OPT_VIEW:
        if (parse_view (optarg, &o->view) == -1)
          {
            fprintf (stderr,
                     "vaioctl: --view: '%s' is not one of cluster, "
                     "host, vm\n",
                     optarg);
            return -1;
          }
        break;
      case OPT_TIMEOUT:
        if (parse_uint (optarg, "--timeout", &u) == -1)
          return -1;
        o->timeout_s = (int)u;
        break;
      case OPT_ITER:
        if (parse_uint (optarg, "--iterations", &o->iterations) == -1)
          return -1;
        break;
      case OPT_INTERVAL:
        if (parse_uint (optarg, "--interval", &o->interval_ms) == -1
            || o->interval_ms == 0)
          return -1;
        break;
      case 'h':
        fputs (usage_text, stdout);
        exit (0);
      default:
        return -1;
      }
  return 0;
}

int
main (int argc, char **argv)
{
  struct options o = { .timeout_s = -1, .interval_ms = 1000 };
  struct cluster c;
  const char *cmd;
  char **rest;
  int nrest, r;

  if (parse_options (argc, argv, &o) == -1)
    {
      fprintf (stderr, "Try 'vaioctl --help'.\n");
      return 2;
    }
  if (optind >= argc)
    {
      fputs (usage_text, stderr);
      return 2;
    }
  cmd = argv[optind];
  rest = argv + optind + 1;
  nrest = argc - optind - 1;

  /* The config: -c FILE, or the first operand of the disk commands. */
  if (o.config == NULL && nrest >= 1 && strcmp (cmd, "filter") != 0
      && strcmp (cmd, "host") != 0)
    {
      o.config = rest[0];
      rest++;
      nrest--;
    }
  if (o.config == NULL)
    {
      fprintf (stderr, "vaioctl: %s: no config file given (FILE or -c FILE)\n",
               cmd);
      return 2;
    }

  if (strcmp (cmd, "validate") == 0)
    {
      if (cluster_load (o.config, &c, true, true) == -1)
        return 1;
      printf ("%s: ok (%zu hosts, %zu policies, %zu VMs)\n", o.config,
              c.cfg->n_hosts, c.cfg->n_policies, c.cfg->n_vms);
      cluster_free (&c);
      return 0;
    }

  if (strcmp (cmd, "plan") != 0 && strcmp (cmd, "up") != 0
      && strcmp (cmd, "down") != 0 && strcmp (cmd, "status") != 0
      && strcmp (cmd, "top") != 0 && strcmp (cmd, "filter") != 0
      && strcmp (cmd, "host") != 0 && strcmp (cmd, "apply") != 0)
    {
      fprintf (stderr, "vaioctl: unknown command '%s'; see vaioctl --help\n",
               cmd);
      return 2;
    }
  /* down must work even when the config no longer validates (an image
   * was removed, a filter uninstalled or altered): stopping is always
   * allowed.  The filter and host commands are how a config is made valid
   * (installing the filter its policies need), so they only need it
   * parsed.  status reports an altered filter as non-compliance rather
   * than refusing to show anything, and top, which only reads stats
   * files, goes on showing the figures of the disks that run.
   */
  if (cluster_load (o.config, &c,
                    strcmp (cmd, "down") != 0 && strcmp (cmd, "filter") != 0
                        && strcmp (cmd, "host") != 0,
                    strcmp (cmd, "down") != 0 && strcmp (cmd, "filter") != 0
                        && strcmp (cmd, "host") != 0
                        && strcmp (cmd, "status") != 0
                        && strcmp (cmd, "top") != 0)
      == -1)
    return 1;

  if (strcmp (cmd, "plan") == 0)
    r = for_each_disk (&c, &o, plan_one) == 0 ? 0 : 1;
  else if (strcmp (cmd, "up") == 0)
    r = for_each_disk (&c, &o, up_one) == 0 ? 0 : 1;
  else if (strcmp (cmd, "down") == 0)
    r = for_each_disk (&c, &o, down_one) == 0 ? 0 : 1;
  else if (strcmp (cmd, "status") == 0)
    r = vaio_status (c.cfg, c.hf, o.view, o.json, stdout);
  else if (strcmp (cmd, "top") == 0)
    r = vaio_top (c.cfg, c.hf, o.iterations, o.interval_ms, o.json, stdout);
  else if (strcmp (cmd, "apply") == 0)
    {
      struct vaio_apply_options ao = {
        .dry_run = o.dry_run,
        .force = o.force,
        .allow_encryption_change = o.allow_enc,
        .convert_encryption = o.convert_enc,
        .timeout_ms = (o.timeout_s >= 0 ? o.timeout_s : 30) * 1000,
      };
      r = vaio_apply (c.cfg, c.hf, &ao) == 0 ? 0 : 1;
    }
  else if (strcmp (cmd, "filter") == 0)
    r = cmd_filter (&c, &o, nrest, rest);
  else
    r = cmd_maintenance (&c, &o, nrest, rest);
  cluster_free (&c);
  return r;
}
