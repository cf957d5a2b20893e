/* vaio-nbd: strict walker over libyaml documents; see yamlutil.h. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yamlutil.h"

static struct vaio_loc
mark_loc (const char *file, yaml_mark_t m)
{
  return (struct vaio_loc){ .file = file,
                            .line = (unsigned)m.line + 1,
                            .column = (unsigned)m.column + 1 };
}

/* libyaml reports a reader error (bad encoding) as a byte offset only:
 * find its line and column (in characters, as libyaml counts them) in
 * the file.  loc keeps line 0 when the file cannot be read again.
 */
static void
offset_loc (const char *file, size_t offset, struct vaio_loc *loc)
{
  FILE *fp = fopen (file, "re");
  unsigned line = 1, column = 1;
  int c;

  if (fp == NULL)
    return;
  for (size_t i = 0; i < offset && (c = getc (fp)) != EOF; i++)
    if (c == '\n')
      {
        line++;
        column = 1;
      }
    else if ((c & 0xc0) != 0x80) /* not a UTF-8 continuation byte */
      column++;
  fclose (fp);
  loc->line = line;
  loc->column = column;
}

static void
report_parser_error (const char *file, const yaml_parser_t *parser,
                     struct vaio_diag *diag)
{
  struct vaio_loc loc = mark_loc (file, parser->problem_mark);
  struct vaio_loc whole = { .file = file };
  const char *problem = parser->problem ? parser->problem : "unknown error";

  switch (parser->error)
    {
    case YAML_MEMORY_ERROR:
      vaio_diag_add (diag, &whole, "out of memory while reading YAML");
      break;
    case YAML_READER_ERROR:
      /* Reader errors (bad encoding) have a byte offset, not a mark. */
      offset_loc (file, parser->problem_offset, &whole);
      vaio_diag_add (diag, &whole, "YAML encoding error: %s", problem);
      break;
    default:
      if (parser->context)
        vaio_diag_add (
            diag, &loc, "YAML syntax error: %s (%s at line %u, column %u)",
            problem, parser->context, (unsigned)parser->context_mark.line + 1,
            (unsigned)parser->context_mark.column + 1);
      else
        vaio_diag_add (diag, &loc, "YAML syntax error: %s", problem);
      break;
    }
}

/* A second document would be silently ignored by yaml_parser_load:
 * refuse it, so that nothing the user wrote is dropped.
 */
static int
check_single_document (struct yu_doc *y, yaml_parser_t *parser,
                       struct vaio_diag *diag)
{
  yaml_document_t next;
  yaml_node_t *root;
  int rc = 0;

  if (!yaml_parser_load (parser, &next))
    {
      report_parser_error (y->file, parser, diag);
      return -1;
    }
  root = yaml_document_get_root_node (&next);
  if (root != NULL)
    {
      struct vaio_loc loc = mark_loc (y->file, next.start_mark);
      vaio_diag_add (diag, &loc,
                     "a second YAML document; only one is allowed per file");
      rc = -1;
    }
  yaml_document_delete (&next);
  return rc;
}

int
yu_load (struct yu_doc *y, const char *file, struct vaio_diag *diag)
{
  struct vaio_loc whole = { .file = file };
  yaml_parser_t parser;
  FILE *fp;
  int rc = -1;

  memset (y, 0, sizeof *y);
  y->file = file;
  fp = fopen (file, "re");
  if (fp == NULL)
    {
      vaio_diag_add (diag, &whole, "cannot open: %s", strerror (errno));
      return -1;
    }
  if (!yaml_parser_initialize (&parser))
    {
      vaio_diag_add (diag, &whole, "out of memory while reading YAML");
      fclose (fp);
      return -1;
    }
  yaml_parser_set_input_file (&parser, fp);
  if (!yaml_parser_load (&parser, &y->doc))
    report_parser_error (file, &parser, diag);
  else
    {
      y->loaded = true;
      if (yaml_document_get_root_node (&y->doc) == NULL)
        vaio_diag_add (diag, &whole, "empty file");
      else
        rc = check_single_document (y, &parser, diag);
    }
  yaml_parser_delete (&parser);
  fclose (fp);
  return rc;
}

void
yu_free (struct yu_doc *y)
{
  if (y->loaded)
    yaml_document_delete (&y->doc);
  y->loaded = false;
}

yaml_node_t *
yu_root (struct yu_doc *y)
{
  return yaml_document_get_root_node (&y->doc);
}

yaml_node_t *
yu_node (struct yu_doc *y, int index)
{
  return yaml_document_get_node (&y->doc, index);
}

struct vaio_loc
yu_loc (const struct yu_doc *y, const yaml_node_t *n)
{
  return mark_loc (y->file, n->start_mark);
}

bool
yu_is_null (const yaml_node_t *n)
{
  const char *v;

  if (n->type != YAML_SCALAR_NODE
      || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  v = (const char *)n->data.scalar.value;
  return strcmp (v, "") == 0 || strcmp (v, "~") == 0 || strcmp (v, "null") == 0
         || strcmp (v, "Null") == 0 || strcmp (v, "NULL") == 0;
}

const char *
yu_kind_name (const yaml_node_t *n)
{
  switch (n->type)
    {
    case YAML_MAPPING_NODE:
      return "a mapping";
    case YAML_SEQUENCE_NODE:
      return "a sequence";
    case YAML_SCALAR_NODE:
      return yu_is_null (n) ? "empty" : "a scalar";
    default:
      return "nothing";
    }
}

const char *
yu_scalar (const yaml_node_t *n)
{
  if (n == NULL || n->type != YAML_SCALAR_NODE)
    return NULL;
  return (const char *)n->data.scalar.value;
}

yaml_node_t *
yu_get (struct yu_doc *y, yaml_node_t *map, const char *key,
        yaml_node_t **key_node)
{
  if (map == NULL || map->type != YAML_MAPPING_NODE)
    return NULL;
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++)
    {
      yaml_node_t *k = yu_node (y, p->key);
      const char *s = yu_scalar (k);

      if (s != NULL && strcmp (s, key) == 0)
        {
          if (key_node)
            *key_node = k;
          return yu_node (y, p->value);
        }
    }
  return NULL;
}

static char *
join_keys (const char *const *keys)
{
  size_t len = 1;
  char *s;

  for (size_t i = 0; keys[i]; i++)
    len += strlen (keys[i]) + 2;
  s = malloc (len);
  if (s == NULL)
    return NULL;
  s[0] = '\0';
  for (size_t i = 0; keys[i]; i++)
    {
      if (i > 0)
        strcat (s, ", ");
      strcat (s, keys[i]);
    }
  return s;
}

static bool
key_allowed (const char *key, const char *const *keys)
{
  for (size_t i = 0; keys[i]; i++)
    if (strcmp (key, keys[i]) == 0)
      return true;
  return false;
}

/* The earlier key node with the same text as pair p, or NULL. */
static yaml_node_t *
earlier_key (struct yu_doc *y, yaml_node_t *map, yaml_node_pair_t *p)
{
  const char *s = yu_scalar (yu_node (y, p->key));

  if (s == NULL)
    return NULL;
  for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++)
    {
      yaml_node_t *k = yu_node (y, q->key);
      const char *t = yu_scalar (k);

      if (t != NULL && strcmp (s, t) == 0)
        return k;
    }
  return NULL;
}

int
yu_check_map (struct yu_doc *y, yaml_node_t *n, const char *what,
              const char *const *keys, struct vaio_diag *diag)
{
  struct vaio_loc loc = yu_loc (y, n);
  size_t before = diag->n;
  char *allowed;

  if (n->type != YAML_MAPPING_NODE)
    {
      vaio_diag_add (diag, &loc, "%s must be a mapping, not %s", what,
                     yu_kind_name (n));
      return -1;
    }
  allowed = keys ? join_keys (keys) : NULL;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++)
    {
      yaml_node_t *k = yu_node (y, p->key), *first;
      const char *s = yu_scalar (k);

      loc = yu_loc (y, k);
      if (s == NULL)
        vaio_diag_add (diag, &loc, "a key in %s is %s; keys must be scalars",
                       what, yu_kind_name (k));
      else if (keys != NULL && !key_allowed (s, keys))
        vaio_diag_add (diag, &loc,
                       "unknown key '%s' in %s (expected one of: %s)", s, what,
                       allowed ? allowed : "?");
      else if ((first = earlier_key (y, n, p)) != NULL)
        vaio_diag_add (diag, &loc,
                       "duplicate key '%s' in %s (first at line %u)", s, what,
                       (unsigned)first->start_mark.line + 1);
    }
  free (allowed);
  return diag->n == before ? 0 : -1;
}

static const char *
kind_wanted (yaml_node_type_t kind)
{
  switch (kind)
    {
    case YAML_MAPPING_NODE:
      return "a mapping";
    case YAML_SEQUENCE_NODE:
      return "a sequence";
    default:
      return "a scalar";
    }
}

int
yu_expect_kind (struct yu_doc *y, yaml_node_t *n, yaml_node_type_t kind,
                const char *key, const char *what, struct vaio_diag *diag)
{
  struct vaio_loc loc = yu_loc (y, n);

  if (n->type == kind && !(kind != YAML_SCALAR_NODE && yu_is_null (n)))
    return 0;
  vaio_diag_add (diag, &loc, "'%s' in %s must be %s, not %s", key, what,
                 kind_wanted (kind), yu_kind_name (n));
  return -1;
}

const char *
yu_get_string (struct yu_doc *y, yaml_node_t *map, const char *key,
               const char *what, bool required, struct vaio_loc *loc,
               struct vaio_diag *diag)
{
  yaml_node_t *v = yu_get (y, map, key, NULL);
  struct vaio_loc here;
  const char *text;

  if (v == NULL)
    {
      if (required)
        {
          here = yu_loc (y, map);
          vaio_diag_add (diag, &here, "missing required key '%s' in %s", key,
                         what);
        }
      return NULL;
    }
  here = yu_loc (y, v);
  if (loc)
    *loc = here;
  if (yu_expect_kind (y, v, YAML_SCALAR_NODE, key, what, diag) == -1)
    return NULL;
  text = yu_scalar (v);
  if (text == NULL || yu_is_null (v) || text[0] == '\0')
    {
      vaio_diag_add (diag, &here, "'%s' in %s must not be empty", key, what);
      return NULL;
    }
  return text;
}

bool
yu_valid_name (const char *s)
{
  if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
    return false;
  for (const char *p = s + 1; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'
          || *p == '.' || *p == '-'))
      return false;
  return true;
}

/* Lexically drop "." and empty components and fold "x/..", so that two
 * spellings of one path compare equal even before the path exists (state
 * dirs, sockets).  Symlinks are not followed: that needs the path to exist.
 */
static void
normalize (char *path)
{
  /* Output "/comp/comp" is built in place: it is never longer than the
   * input consumed so far, so writes stay behind the unread input.
   */
  const char *in = path;
  size_t o = 0; /* length of the output */

  while (*in)
    {
      const char *end;
      size_t len;

      while (*in == '/')
        in++;
      if (*in == '\0')
        break;
      end = strchrnul (in, '/');
      len = (size_t)(end - in);
      if (len == 2 && in[0] == '.' && in[1] == '.')
        {
          /* Drop the last component written; ".." of "/" is "/". */
          while (o > 0 && path[--o] != '/')
            ;
        }
      else if (!(len == 1 && in[0] == '.'))
        {
          path[o] = '/';
          memmove (path + o + 1, in, len);
          o += len + 1;
        }
      in = end;
    }
  if (o == 0)
    path[o++] = '/';
  path[o] = '\0';
}

char *
yu_resolve_path (const char *dir, const char *path)
{
  char *p;

  if (path[0] == '/')
    p = strdup (path);
  else if (asprintf (&p, "%s/%s", dir, path) == -1)
    p = NULL;
  if (p != NULL)
    normalize (p);
  return p;
}

char *
yu_abs_dir (const char *file)
{
  char *copy = strdup (file), *dir;

  if (copy == NULL)
    return NULL;
  dir = realpath (dirname (copy), NULL);
  free (copy);
  return dir;
}
