/* Placeholder until the top command lands. */
#include "analyze/commands.h"

#include <stdio.h>

int pyspy_cmd_top(const pyspy_config *cfg) {
    (void)cfg;
    fprintf(stderr, "Error: 'top' is not implemented yet\n");
    return 1;
}
