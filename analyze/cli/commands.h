/* The pyspy-analyze subcommands. Each takes a parsed, validated config
 * and returns the process exit status (0 ok, 1 failure after printing
 * one error line, PYSPY_EXIT_INCOMPLETE output written but some stack in
 * it could not be read whole). */
#ifndef PYSPY_ANALYZE_COMMANDS_H
#define PYSPY_ANALYZE_COMMANDS_H
#include <pyspy.h>

#define PYSPY_EXIT_INCOMPLETE 3

int pyspy_cmd_dump(const pyspy_config *cfg);
int pyspy_cmd_record(const pyspy_config *cfg);
int pyspy_cmd_top(const pyspy_config *cfg);
int pyspy_cmd_diff(const pyspy_config *cfg);
int pyspy_cmd_merge(const pyspy_config *cfg);

/* Warns on stderr, in one line, of memory the analysis of src wanted and
 * src lacks (cores), with what to do about it; false when there was none. */
bool pyspy_warn_missed(const pyspy_memsrc *src);

#endif
