/* `stratos quota show|set`. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_quota_commands[];
