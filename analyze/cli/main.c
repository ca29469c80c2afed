/* pyspy-analyze (also installed as pyspy): py-spy's command line. */
#include "analyze/cli/commands.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    pyspy_config cfg;
    pyspy_error err = {0};
    char *out = NULL;
    if (pyspy_config_from_args(argc, argv, &cfg, &out, &err) != 0) {
        free(out);
        /* py-spy: its parser's errors exit 2 with a hint; what it refuses
         * after parsing is one bare line and status 1. */
        if (err.code != PYSPY_E_USAGE) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        fprintf(stderr, "error: %s\n", err.msg);
        fprintf(stderr, "\nFor more information, try '--help'.\n");
        return 2;
    }
    int rc = 0;
    if (out) {
        fputs(out, stdout);
        free(out);
    }
    switch (cfg.command) {
    case PYSPY_CMD_DUMP:
        rc = pyspy_cmd_dump(&cfg);
        break;
    case PYSPY_CMD_RECORD:
        rc = pyspy_cmd_record(&cfg);
        break;
    case PYSPY_CMD_TOP:
        rc = pyspy_cmd_top(&cfg);
        break;
    case PYSPY_CMD_DIFF:
        rc = pyspy_cmd_diff(&cfg);
        break;
    case PYSPY_CMD_MERGE:
        rc = pyspy_cmd_merge(&cfg);
        break;
    default:
        break;
    }
    pyspy_config_free(&cfg);
    return rc;
}
