/* `stratos keypair create|delete|list|show`. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_keypair_commands[];
