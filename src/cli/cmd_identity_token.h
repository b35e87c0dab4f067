/* `stratos token issue` and `stratos token revoke`. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_token_commands[];
