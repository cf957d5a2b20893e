/* vaio-nbd: strict size and duration parsing. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "units.h"

/* Leading decimal digits of s into *v; *end points after them. */
static int
parse_digits (const char *s, uint64_t *v, const char **end)
{
  uint64_t n = 0;
  const char *p = s;

  if (*p < '0' || *p > '9')
    {
      errno = EINVAL;
      return -1;
    }
  for (; *p >= '0' && *p <= '9'; p++)
    {
      unsigned d = (unsigned)(*p - '0');
      if (n > (UINT64_MAX - d) / 10)
        {
          errno = ERANGE;
          return -1;
        }
      n = n * 10 + d;
    }
  *v = n;
  *end = p;
  return 0;
}

static int
scale (uint64_t n, uint64_t mult, uint64_t *out)
{
  if (mult != 0 && n > UINT64_MAX / mult)
    {
      errno = ERANGE;
      return -1;
    }
  *out = n * mult;
  return 0;
}

int
vaio_parse_uint (const char *s, uint64_t *v)
{
  const char *end;

  if (s == NULL || parse_digits (s, v, &end) == -1)
    return -1;
  if (*end != '\0')
    {
      errno = EINVAL;
      return -1;
    }
  return 0;
}

/* nbdkit_parse_size's grammar (nbdkit 1.32, common/include/human-size.h),
 * so that a size vaioctl validates is one every nbdkit filter accepts and
 * reads as the same number: digits, then at most one letter, either case:
 * B (bytes), K M G T P E (powers of 1024), S (512-byte sectors).  nbdkit
 * refuses "KiB" and "KB", and anything above INT64_MAX (its result is an
 * int64_t).  strtoimax also lets nbdkit take a leading blank or '+'; we
 * do not: a config value is written plainly.
 */
int
vaio_parse_size (const char *s, uint64_t *bytes)
{
  static const char powers[] = "KMGTPE";
  const char *end, *p;
  uint64_t n, mult = 1;

  if (s == NULL || parse_digits (s, &n, &end) == -1)
    return -1;
  if (end[0] != '\0' && end[1] != '\0')
    {
      errno = EINVAL;
      return -1;
    }
  if (end[0] == 'S' || end[0] == 's')
    mult = 512;
  else if (end[0] != '\0' && end[0] != 'B' && end[0] != 'b')
    {
      p = strchr (powers, toupper ((unsigned char)end[0]));
      if (p == NULL)
        {
          errno = EINVAL;
          return -1;
        }
      for (const char *q = powers; q <= p; q++)
        mult *= 1024;
    }
  if (n > (uint64_t)INT64_MAX / mult)
    {
      errno = ERANGE;
      return -1;
    }
  *bytes = n * mult;
  return 0;
}

int
vaio_parse_duration (const char *s, uint64_t *ns)
{
  static const struct
  {
    const char *unit;
    uint64_t ns;
  } units[] = {
    { "ns", 1 },
    { "us", 1000 },
    { "ms", 1000000 },
    { "s", 1000000000 },
    { "m", UINT64_C (60) * 1000000000 },
    { "h", UINT64_C (3600) * 1000000000 },
  };
  const char *end;
  uint64_t n;

  if (s == NULL || parse_digits (s, &n, &end) == -1)
    return -1;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (strcmp (end, units[i].unit) == 0)
      return scale (n, units[i].ns, ns);
  errno = EINVAL;
  return -1;
}

int
vaio_parse_bool (const char *s, bool *b)
{
  static const char *const yes[] = { "true", "yes", "on", "1" };
  static const char *const no[] = { "false", "no", "off", "0" };

  for (size_t i = 0; s && i < 4; i++)
    {
      if (strcmp (s, yes[i]) == 0)
        {
          *b = true;
          return 0;
        }
      if (strcmp (s, no[i]) == 0)
        {
          *b = false;
          return 0;
        }
    }
  errno = EINVAL;
  return -1;
}

const char *
vaio_format_size (uint64_t bytes, char *buf, unsigned len)
{
  static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
  double v = (double)bytes;
  unsigned u = 0;

  while (v >= 1024 && u < 5)
    {
      v /= 1024;
      u++;
    }
  if (u == 0)
    snprintf (buf, len, "%llu B", (unsigned long long)bytes);
  else
    snprintf (buf, len, "%.1f %s", v, unit[u]);
  return buf;
}
