/* `stratos hypervisor list|show` and `stratos compute service list`. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_hypervisor_commands[];
