/* `stratos user create|list|show|set|delete`. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_user_commands[];
