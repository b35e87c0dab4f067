/* `stratos server group create|delete|list|show`. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_server_group_commands[];
