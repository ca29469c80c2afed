/* pyspy-capture's command line (first version: refuses everything). */
#include <pyspy.h>
#include "capture/snapshot.h"

#include <stdlib.h>

pyspy_capture_config pyspy_capture_config_default(void) {
    pyspy_capture_config c = {0};
    c.blocking = PYSPY_LOCK;
    c.filter = PYSPY_FILTER_DEFAULT;
    return c;
}

int pyspy_capture_config_from_args(int argc, char **argv,
                                   pyspy_capture_config *cfg, char **out,
                                   pyspy_error *err) {
    (void)argc;
    (void)argv;
    *cfg = pyspy_capture_config_default();
    if (out)
        *out = NULL;
    return pyspy_error_set(err, PYSPY_E_USAGE, "command line not parsed yet");
}

void pyspy_capture_config_free(pyspy_capture_config *cfg) {
    if (!cfg)
        return;
    free(cfg->output);
    free(cfg->core);
    cfg->output = NULL;
    cfg->core = NULL;
}
