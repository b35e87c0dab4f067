/* Documents the user writes by hand for `stratos apply`: YAML (JSON is
 * YAML) read into JSON values, one per YAML document of a stream ("---"
 * separates them), with YAML 1.2's core schema for plain scalars (3000 is
 * a number, true a boolean, "~" null, 2GHz a string) and quoted scalars
 * kept as strings. Anchors and aliases are refused (no alias bombs from a
 * file someone else wrote). */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "lib/err.h"

#define ST_CLI_DOCUMENT_MAX (1024 * 1024)

/* The documents of text (len bytes) as a JSON array (new reference); empty
 * documents are skipped. -EINVAL "invalid YAML: <libfyaml's message>". */
int st_cli_document_parse(const char *text, size_t len, json_t **ret, struct st_err **err);
