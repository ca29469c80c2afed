/* pyspy-analyze's command line (first version: refuses everything). */
#include <pyspy.h>

int pyspy_config_from_args(int argc, char **argv, pyspy_config *cfg, char **out,
                           pyspy_error *err) {
    (void)argc;
    (void)argv;
    *cfg = pyspy_config_default();
    if (out)
        *out = NULL;
    return pyspy_error_set(err, PYSPY_E_USAGE, "command line not parsed yet");
}
