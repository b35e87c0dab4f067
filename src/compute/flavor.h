/* Flavors: the sizes a server can be created with (vCPUs, RAM, disk) and
 * their extra specs, which carry what Nova's flavors carry (quota:cpu_shares,
 * quota:cpu_period, quota:cpu_quota) and stratos's own keys
 * (resources:cpu_reservation_mhz, resources:cpu_limit_mhz,
 * resources:memory_reservation_mb, resources:memory_limit_mb,
 * resources:pids_limit, stratos:resource_policy). Those keys are checked when
 * they are set, so a bad value is a 400 at `flavor set`, not a failed server
 * later.
 *
 * Flavors are global (every project sees the public ones; a private one is
 * seen by the projects in its access list), read by everyone and written by
 * admins only (the policy's admin_only list).
 *
 * /compute/flavors/<id>:
 * {"id", "name", "vcpus", "ram" (MiB), "disk" (GiB), "swap" (MiB),
 *  "ephemeral" (GiB), "rxtx_factor", "is_public", "disabled", "description",
 *  "extra_specs": {}, "access": [project ids], "created_at", "updated_at"}
 * Names are unique: /compute/flavor_names/<name> holds {"id", "at"}, claimed
 * with a create-only write before the flavor is, so two concurrent creates of
 * one name cannot both win (a claim left by a crash is taken over once its
 * flavor is found missing). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct st_kv;

#define ST_FLAVORS_PREFIX         "/compute/flavors/"
#define ST_FLAVOR_NAMES_PREFIX    "/compute/flavor_names/"
#define ST_FLAVOR_NAME_MAX        255
#define ST_FLAVOR_EXTRA_SPECS_MAX 128
#define ST_FLAVOR_MAX             10000

/* Creates a flavor from a request in the stored field names (the API
 * translates Nova's): "name" (required), "vcpus", "ram", "disk" (required,
 * integers or digit strings), "id" (string, integer or null = a new UUID),
 * "swap", "ephemeral", "rxtx_factor", "is_public", "description".
 * -EINVAL for bad input, -EEXIST "Flavor with name x already exists." or
 * "Flavor with ID x already exists.". *ret (optional) is the stored flavor. */
int st_flavor_create(struct st_kv *kv, json_t *req, json_t **ret, struct st_err **err);

/* -ENOENT "Flavor x could not be found." */
int st_flavor_get(struct st_kv *kv, const char *id, json_t **ret, struct st_err **err);

/* Every flavor, in id order (new reference). */
int st_flavor_list(struct st_kv *kv, json_t **ret, struct st_err **err);

int st_flavor_delete(struct st_kv *kv, const char *id, struct st_err **err);

/* Whether a project may see (and so use) a flavor: public ones, and private
 * ones whose access list names the project. */
bool st_flavor_visible(json_t *flavor, const char *project_id);

/* Checks one extra spec (key pattern, value length, and the value of the
 * keys stratos reads). value must be a string. */
int st_flavor_check_extra_spec(const char *key, const char *value, struct st_err **err);

/* Merges specs ({key: string|number|bool}, numbers and booleans stored as
 * their text, as Nova does) into the flavor's extra specs. *ret (optional)
 * gets the specs as stored. */
int st_flavor_set_extra_specs(struct st_kv *kv, const char *id, json_t *specs, json_t **ret,
                              struct st_err **err);

/* -ENOENT "Flavor x has no extra specs with key y." */
int st_flavor_unset_extra_spec(struct st_kv *kv, const char *id, const char *key,
                               struct st_err **err);

/* Adds or removes a project in a private flavor's access list. -EINVAL for a
 * public flavor (Nova: "Can not add access to a public flavor."), -EEXIST
 * when already there, -ENOENT when not there on removal. */
int st_flavor_access(struct st_kv *kv, const char *id, const char *project_id, bool add,
                     struct st_err **err);
