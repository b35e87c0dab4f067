/* `stratos flavor create|delete|list|set|show|unset`. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_flavor_commands[];
