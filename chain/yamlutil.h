/* vaio-nbd: a small strict walker over libyaml's document API, shared by
 * the config and manifest parsers.  Every check reports through struct
 * vaio_diag with the file:line:column of the offending node (libyaml's
 * marks are 0-based; ours are 1-based).
 */
#ifndef VAIO_YAMLUTIL_H
#define VAIO_YAMLUTIL_H

#include <stdbool.h>
#include <yaml.h>

#include "model.h"

struct yu_doc
{
  yaml_document_t doc;
  const char *file; /* borrowed: used in every location */
  bool loaded;
};

/* Load the single YAML document in file.  Returns 0 with a non-NULL root,
 * or -1 after adding a message (cannot open, syntax error, empty file,
 * more than one document).  yu_free is safe after either.
 */
int yu_load (struct yu_doc *y, const char *file, struct vaio_diag *diag);
void yu_free (struct yu_doc *y);

yaml_node_t *yu_root (struct yu_doc *y);
yaml_node_t *yu_node (struct yu_doc *y, int index);
struct vaio_loc yu_loc (const struct yu_doc *y, const yaml_node_t *n);

/* "a mapping", "a sequence", "a scalar" or "empty" (a null scalar). */
const char *yu_kind_name (const yaml_node_t *n);

/* A plain null scalar: nothing, "~" or "null". */
bool yu_is_null (const yaml_node_t *n);

/* The text of a scalar node, NUL-terminated; NULL for other kinds. */
const char *yu_scalar (const yaml_node_t *n);

/* The value of key in a mapping node (NULL if absent or not a mapping);
 * *key_node, if given, receives the key node (for its location).
 */
yaml_node_t *yu_get (struct yu_doc *y, yaml_node_t *map, const char *key,
                     yaml_node_t **key_node);

/* Check that n is a mapping whose keys are scalars from keys[] (a NULL
 * terminated list; keys == NULL allows any scalar), each at most once.  what
 * names the mapping in messages ("host 'h1'").  Returns 0, or -1 after adding
 * messages.
 */
int yu_check_map (struct yu_doc *y, yaml_node_t *n, const char *what,
                  const char *const *keys, struct vaio_diag *diag);

/* Check that the value of key has the expected kind (YAML_MAPPING_NODE,
 * YAML_SEQUENCE_NODE, YAML_SCALAR_NODE).  Returns 0 or -1 + message.
 */
int yu_expect_kind (struct yu_doc *y, yaml_node_t *n, yaml_node_type_t kind,
                    const char *key, const char *what, struct vaio_diag *diag);

/* A required, non-empty scalar string value of key in map.  Returns the
 * text (owned by the document), or NULL after adding a message (missing,
 * wrong kind, empty).  *loc receives the value's location when given.
 */
const char *yu_get_string (struct yu_doc *y, yaml_node_t *map, const char *key,
                           const char *what, bool required,
                           struct vaio_loc *loc, struct vaio_diag *diag);

/* Names become path components: [a-z0-9][a-z0-9_.-]*, so never "/",
 * never "." or "..".
 */
bool yu_valid_name (const char *s);
#define YU_NAME_RULE "[a-z0-9][a-z0-9_.-]*"

/* Join a relative path onto dir (absolute paths are taken as they are)
 * and normalize it lexically: no ".", "..", "//" or trailing "/".  NULL on
 * allocation failure.
 */
char *yu_resolve_path (const char *dir, const char *path);

/* The absolute directory holding file, NULL + errno on failure. */
char *yu_abs_dir (const char *file);

#endif /* VAIO_YAMLUTIL_H */
