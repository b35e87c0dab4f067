/* Commands about stratosd itself: `stratos version` and `stratos status`. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_system_commands[];
