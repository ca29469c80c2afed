/* Placeholder until the record command lands. */
#include "analyze/commands.h"

#include <stdio.h>

int pyspy_cmd_record(const pyspy_config *cfg) {
    (void)cfg;
    fprintf(stderr, "Error: 'record' is not implemented yet\n");
    return 1;
}
