/* vaio-nbd unit tests: chain helpers, see chainutil.h. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainutil.h"
#include "testutil.h"

char *
cu_diag_text (const struct vaio_diag *d, const char *dir,
              const char *placeholder)
{
  char *joined = NULL, *out;
  size_t len = 0;
  FILE *mem = open_memstream (&joined, &len);

  ck_assert_ptr_nonnull (mem);
  for (size_t i = 0; i < d->n; i++)
    fprintf (mem, "%s%s", i ? "\n" : "", d->msgs[i]);
  fclose (mem);
  out = tu_replace (joined, dir, placeholder);
  free (joined);
  return out;
}

struct vaio_host_filters *
cu_host_filters (const struct vaio_config *cfg)
{
  struct vaio_host_filters *hf = calloc (cfg->n_hosts + 1, sizeof *hf);
  struct vaio_diag diag = { 0 };

  ck_assert_ptr_nonnull (hf);
  for (size_t i = 0; i < cfg->n_hosts; i++)
    {
      hf[i].host = &cfg->hosts[i];
      for (size_t j = 0; j < cfg->hosts[i].n_filter_files; j++)
        {
          struct vaio_manifest *m
              = vaio_manifest_load (cfg->hosts[i].filter_files[j], &diag);
          ck_assert_msg (m != NULL, "fixture manifest: %s",
                         diag.n ? diag.msgs[0] : "?");
          ck_assert_msg (hf[i].by_class[m->class_] == NULL,
                         "fixture host %s has two %s filters",
                         cfg->hosts[i].name, vaio_class_name (m->class_));
          hf[i].by_class[m->class_] = m;
        }
    }
  return hf;
}

void
cu_host_filters_free (struct vaio_host_filters *hf, size_t n)
{
  for (size_t i = 0; i < n; i++)
    for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
      vaio_manifest_free (hf[i].by_class[c]);
  free (hf);
}

char *
cu_shipped_manifest (const char *dir, const char *name)
{
  const char *src = getenv ("VAIO_SRC");
  char *tmpl, *text, *so, *a, *b, *c, *out, *file;

  ck_assert_msg (src != NULL, "VAIO_SRC is not set (run through meson test)");
  ck_assert_int_ne (
      asprintf (&tmpl, "%s/configs/manifests/%s.manifest.in", src, name), -1);
  text = tu_read_file (tmpl);
  ck_assert_msg (text != NULL, "cannot read %s", tmpl);
  ck_assert_int_ne (asprintf (&so, "%s/%s.so", dir, name), -1);
  a = tu_replace (text, "@PATH@", so);
  b = tu_replace (a, "@SHA256@",
                  "0000000000000000000000000000000000000000"
                  "000000000000000000000000");
  /* The build puts nbdkit --version here; the unit tests run no nbdkit. */
  c = tu_replace (b, "@NBDKIT_VERSION@", "1.0.0");
  ck_assert_int_ne (asprintf (&out, "%s.yaml", name), -1);
  file = tu_write_file (dir, out, c, 0600);
  free (tmpl);
  free (text);
  free (so);
  free (a);
  free (b);
  free (c);
  free (out);
  return file;
}

char *
cu_check_config (const char *file, const char *dir)
{
  struct vaio_diag diag = { 0 };
  struct vaio_config *cfg = vaio_config_load (file, &diag);
  char *text;

  if (cfg != NULL)
    {
      struct vaio_host_filters *hf = cu_host_filters (cfg);
      int rc = vaio_validate (cfg, hf, &diag);

      ck_assert_int_eq (rc, diag.n ? -1 : 0);
      cu_host_filters_free (hf, cfg->n_hosts);
      vaio_config_free (cfg);
    }
  else
    ck_assert_msg (diag.n > 0, "vaio_config_load failed without a message");
  text = cu_diag_text (&diag, dir, "@DIR@");
  vaio_diag_free (&diag);
  return text;
}
