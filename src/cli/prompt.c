/* Password prompts; see prompt.h. termios rather than getpass(3), which is
 * obsolete and reads /dev/tty even when standard input is a pipe. */
#include "prompt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "lib/cleanup.h"

static int read_hidden(const char *prompt, char **ret)
{
    struct termios old, quiet;
    bool restore = tcgetattr(STDIN_FILENO, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    fputs(prompt, stderr);
    fflush(stderr);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (restore)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
    if (n < 0) {
        free(line);
        return -EIO;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = '\0';
    *ret = line;
    return 0;
}

int st_cli_prompt_password(const char *prompt, bool confirm, char **ret, struct st_err **err)
{
    if (!isatty(STDIN_FILENO))
        return st_err_set(err, -ENOTTY, "No terminal detected attempting to read password");
    st_autofree char *repeat = st_sprintf("Repeat %s", prompt);
    for (;;) {
        char *first = NULL, *second = NULL;
        if (read_hidden(prompt, &first) < 0)
            return st_err_set(err, -EIO, "Error reading password");
        if (!confirm) {
            *ret = first;
            return 0;
        }
        if (read_hidden(repeat, &second) < 0) {
            free(first);
            return st_err_set(err, -EIO, "Error reading password");
        }
        bool same = strcmp(first, second) == 0;
        free(second);
        if (same) {
            *ret = first;
            return 0;
        }
        free(first);
        fputs("The passwords entered were not the same\n", stdout);
    }
}
