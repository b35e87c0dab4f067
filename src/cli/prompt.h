/* Reading a password from the terminal without echo, for the login and for
 * `user create --password-prompt`, with osc-lib's texts ("User Password:",
 * "Repeat User Password:"). Only a terminal is asked: a script gets an
 * error instead of a hang. */
#pragma once

#include <stdbool.h>

#include "lib/err.h"

/* Prompts on stderr and reads one line from standard input with echo off;
 * confirm asks twice ("Repeat <prompt>") until both agree. -ENOTTY "No
 * terminal detected attempting to read password" when standard input is
 * not a terminal; -EIO "Error reading password" at end of input. */
int st_cli_prompt_password(const char *prompt, bool confirm, char **ret, struct st_err **err);
