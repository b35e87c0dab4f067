/* The stratos command-line client: everything lives in st_cli (command.c);
 * main only hands it the process's argv and standard streams. */
#include <stdio.h>

#include "cli/command.h"

int main(int argc, char **argv)
{
    return st_cli_run(argc, argv, stdout, stderr);
}
