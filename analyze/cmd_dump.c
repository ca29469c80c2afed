/* Placeholder until the dump command lands. */
#include "analyze/commands.h"

#include <stdio.h>

int pyspy_cmd_dump(const pyspy_config *cfg) {
    (void)cfg;
    fprintf(stderr, "Error: 'dump' is not implemented yet\n");
    return 1;
}
