/* `stratos apply` and `stratos resource policy list|show|delete`. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_apply_commands[];
