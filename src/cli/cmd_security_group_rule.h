/* `stratos security group rule ...`: the openstack CLI's commands of that name. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_security_group_rule_commands[];
