/* `stratos image create|delete|list|save|set|show`. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_image_commands[];
