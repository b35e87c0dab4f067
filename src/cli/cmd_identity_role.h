/* `stratos role create|list|show|set|delete|add|remove` and
 * `stratos role assignment list`. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_role_commands[];
