/* vaio-nbd supervisor: one nbdkit process per VM disk. */
#ifndef VAIO_SUPERVISE_H
#define VAIO_SUPERVISE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "plan.h"

/* CLOCK_MONOTONIC in milliseconds (deadlines and elapsed times). */
uint64_t vaio_now_ms (void);

/* The pid of the disk's nbdkit if its pidfile names a live nbdkit
 * process, else 0 (a stale pidfile is not "running").
 */
pid_t vaio_disk_pid (const char *pidfile);

/* Is pid a live (non-zombie) nbdkit process? */
bool vaio_disk_pid_alive (pid_t pid);

/* Create the per-VM directory (0700), the disk's state directory and one
 * directory per filter class (0700), start nbdkit detached with stderr
 * going to the disk's log, wait up to timeout_ms until it serves (an NBD
 * client completes the handshake and reads the size: listening is not
 * enough), and record what runs (<state>/running).  On failure the
 * process started is killed, whatever stage it reached, and the diag
 * holds the reason and the log's last lines.  Returns the pid, or -1.
 */
pid_t vaio_disk_start (const struct vaio_plan_disk *p, int timeout_ms,
                       struct vaio_diag *diag);

/* The same on a listening socket the caller made (listen_fd; -1: nbdkit
 * makes its own from --unix): nbdkit gets it by socket activation, and
 * clients queued on it meanwhile are served once nbdkit runs.
 */
pid_t vaio_disk_start_on (const struct vaio_plan_disk *p, int listen_fd,
                          int timeout_ms, struct vaio_diag *diag);

/* vaio_disk_start_on for a chain whose classes are has[] (indexed by
 * class) rather than the plan's chain: a rollback restarts the old argv
 * with the new plan's paths.
 */
pid_t vaio_disk_restart_on (const struct vaio_plan_disk *p, int listen_fd,
                            int timeout_ms, const bool *has,
                            struct vaio_diag *diag);

/* Every start records the classes of the chain it starts in
 * <state>/chain-classes, and first checks the filter state the previous
 * chains left: replication or caching state that a chain without that
 * class made stale is set aside (<class>.stale-<unix time>; the replica
 * gets a full sync, the cache starts empty), and a start is refused when
 * a cache it would bypass or set aside may hold dirty data.  This runs
 * those checks only, changing nothing: 0, or -1 with diag.  cache_in_use:
 * the running chain serves through the cache (a swap destages it first).
 */
int vaio_disk_check_state (const struct vaio_plan_disk *p, bool cache_in_use,
                           struct vaio_diag *diag);

/* For a swap: bind a new listening socket and rename it over the disk's
 * socket path, so a client that reconnects while one chain stops and the
 * next starts waits in its backlog instead of being refused.  Returns the
 * listening fd (close-on-exec), or -1 (unix socket disks only).
 */
int vaio_disk_take_over_socket (const struct vaio_plan_disk *p);

/* A plan holding only the disk's identity and paths (vm, disk, host,
 * policy if it exists, socket, state dir, pidfile, log, pause socket; no
 * chain, no argv): what stopping a disk needs, without its filters.
 * Returns 0, or -1 with diag (free with vaio_plan_disk_free).
 */
int vaio_disk_paths (const struct vaio_config *cfg, const struct vaio_vm *vm,
                     const struct vaio_disk *d, struct vaio_plan_disk *p,
                     struct vaio_diag *diag);

/* Stop the disk's nbdkit: first an NBD flush over a side connection
 * (bounded by timeout_ms: SIGTERM makes nbdkit close its filters, not
 * flush them, and a write-back cache would lose what it holds), then
 * SIGTERM, wait up to timeout_ms, then SIGKILL with a warning.  Returns
 * 0 when the process is gone (or was not running), 1 when it is gone but
 * the flush failed (diag says why), -1 when it still runs.
 */
int vaio_disk_stop (const struct vaio_plan_disk *p, int timeout_ms,
                    struct vaio_diag *diag);

/* Record (atomically) what runs for the disk: its policy, chain and argv,
 * in <state>/running.  Returns 0 or -1.
 */
int vaio_disk_record_running (const struct vaio_plan_disk *p);

/* Write text as the disk's running record, atomically (0600). */
int vaio_disk_write_record (const char *state_dir, const char *text);

/* What `up` recorded for a running disk: "policy NAME", one
 * "filter CLASS NAME VERSION SHA256" line per chain position, an
 * "env TMPDIR=DIR" line when the plan sets it, and "argv WORD" lines.  Returns
 * a malloc'd text or NULL.
 */
char *vaio_disk_running_record (const char *state_dir);

/* Make dir (and missing parents) with mode 0700, and insist the leaf is
 * owner-only even if it already existed.
 */
int vaio_mkdir_private (const char *dir);

#endif /* VAIO_SUPERVISE_H */
