/* vaio-sioc: policy parameters and the live settings file. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "units.h"

void
sioc_policy_init (struct sioc_policy *p)
{
  memset (p, 0, sizeof *p);
  p->shares = SIOC_SHARES_NORMAL;
  p->latency_threshold_ns = SIOC_DEFAULT_THRESHOLD_NS;
}

static int
parse_rate (const char *key, const char *value, uint64_t *out, char *err,
            size_t errlen)
{
  uint64_t v;

  if (vaio_parse_uint (value, &v) == -1 || v > SIOC_RATE_MAX)
    {
      snprintf (err, errlen,
                "%s: '%s' is not a rate (a whole number from 0 to %u, "
                "0 meaning none)",
                key, value, SIOC_RATE_MAX);
      return -1;
    }
  *out = v;
  return 0;
}

static int
parse_shares (const char *value, uint32_t *out, char *err, size_t errlen)
{
  uint64_t v;

  if (strcmp (value, "low") == 0)
    v = SIOC_SHARES_LOW;
  else if (strcmp (value, "normal") == 0)
    v = SIOC_SHARES_NORMAL;
  else if (strcmp (value, "high") == 0)
    v = SIOC_SHARES_HIGH;
  else if (vaio_parse_uint (value, &v) == -1 || v == 0 || v > SIOC_SHARES_MAX)
    {
      snprintf (err, errlen,
                "sioc-shares: '%s' is not low, normal, high or a number "
                "from 1 to %u",
                value, SIOC_SHARES_MAX);
      return -1;
    }
  *out = (uint32_t)v;
  return 0;
}

static int
parse_threshold (struct sioc_policy *p, const char *value, char *err,
                 size_t errlen)
{
  uint64_t ns;

  if (strcmp (value, "auto") == 0)
    {
      p->latency_auto = true;
      return 0;
    }
  /* Bounds: below 100us no disk is congested-free; above 10s nothing is
   * ever congested.  Either is a typo, not a policy.
   */
  if (vaio_parse_duration (value, &ns) == -1 || ns < 100000
      || ns > UINT64_C (10000000000))
    {
      snprintf (err, errlen,
                "sioc-latency-threshold: '%s' is not 'auto' or a duration "
                "from 100us to 10s (like 30ms)",
                value);
      return -1;
    }
  p->latency_auto = false;
  p->latency_threshold_ns = ns;
  return 0;
}

int
sioc_policy_set (struct sioc_policy *p, const char *key, const char *value,
                 char *err, size_t errlen)
{
  if (strcmp (key, "sioc-limit-iops") == 0)
    return parse_rate (key, value, &p->limit_iops, err, errlen);
  if (strcmp (key, "sioc-limit-mbps") == 0)
    return parse_rate (key, value, &p->limit_mbps, err, errlen);
  if (strcmp (key, "sioc-reservation") == 0)
    return parse_rate (key, value, &p->reservation_iops, err, errlen);
  if (strcmp (key, "sioc-shares") == 0)
    return parse_shares (value, &p->shares, err, errlen);
  if (strcmp (key, "sioc-latency-threshold") == 0)
    return parse_threshold (p, value, err, errlen);
  return 1;
}

int
sioc_policy_check (const struct sioc_policy *p, char *err, size_t errlen)
{
  if (p->limit_iops != 0 && p->reservation_iops > p->limit_iops)
    {
      snprintf (err, errlen,
                "sioc-reservation=%" PRIu64
                " is above sioc-limit-iops=%" PRIu64,
                p->reservation_iops, p->limit_iops);
      return -1;
    }
  return 0;
}

/* Strip leading and trailing blanks in place. */
static char *
trim (char *s)
{
  char *e;

  while (*s == ' ' || *s == '\t')
    s++;
  e = s + strlen (s);
  while (e > s
         && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
    *--e = '\0';
  return s;
}

static int
load_line (struct sioc_policy *p, const char *path, unsigned lineno, char *line,
           char *err, size_t errlen)
{
  char msg[256], *eq, *key, *value;
  int r;

  key = trim (line);
  if (*key == '\0' || *key == '#')
    return 0;
  eq = strchr (key, '=');
  if (eq == NULL)
    {
      snprintf (err, errlen, "%s:%u: expected key=value", path, lineno);
      return -1;
    }
  *eq = '\0';
  key = trim (key);
  value = trim (eq + 1);
  r = sioc_policy_set (p, key, value, msg, sizeof msg);
  if (r == 1)
    {
      snprintf (err, errlen, "%s:%u: unknown key '%s'", path, lineno, key);
      return -1;
    }
  if (r == -1)
    {
      snprintf (err, errlen, "%s:%u: %s", path, lineno, msg);
      return -1;
    }
  return 0;
}

int
sioc_policy_load_file (const char *path, struct sioc_policy *p, char *err,
                       size_t errlen)
{
  struct sioc_policy next = *p;
  char line[512], msg[256];
  unsigned lineno = 0;
  FILE *fp;
  int r = 0;

  fp = fopen (path, "re");
  if (fp == NULL)
    {
      snprintf (err, errlen, "%s: %s", path, strerror (errno));
      return -1;
    }
  while (r == 0 && fgets (line, sizeof line, fp) != NULL)
    {
      lineno++;
      if (strchr (line, '\n') == NULL && !feof (fp))
        {
          snprintf (err, errlen, "%s:%u: line too long", path, lineno);
          r = -1;
          break;
        }
      r = load_line (&next, path, lineno, line, err, errlen);
    }
  if (r == 0 && ferror (fp))
    {
      snprintf (err, errlen, "%s: read error", path);
      r = -1;
    }
  fclose (fp);
  if (r == 0 && sioc_policy_check (&next, msg, sizeof msg) == -1)
    {
      snprintf (err, errlen, "%s: %s", path, msg);
      r = -1;
    }
  if (r == 0)
    *p = next;
  return r;
}
